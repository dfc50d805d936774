//! The state of one `Store`: what a grader instance can reach, which is nothing beyond its own
//! log pipe, a clock, a small random source and (for model graders) the `llm` import.

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::graders::bindings::{llm, types};
use crate::graders::llm::RowLlm;

/// Per-`Store` data; one per row (or per batch), dropped after the call.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: StoreLimits,
    pub(crate) llm: RowLlm,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for HostState {}

impl llm::Host for HostState {
    async fn complete(
        &mut self,
        request: llm::ChatRequest,
    ) -> Result<llm::ChatResponse, llm::LlmError> {
        self.llm.complete(request).await
    }

    async fn embed(
        &mut self,
        model: Option<String>,
        inputs: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, llm::LlmError> {
        self.llm.embed(model, inputs).await
    }
}
