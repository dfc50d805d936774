//! A bounded sink for a guest's stdout and stderr that keeps the tail.
//!
//! wasmtime's `MemoryOutputPipe` traps the guest once full, which would turn a chatty grader
//! into a failed row; this pipe instead drops the oldest bytes, counts them, and always accepts
//! the write, so logging can never fail grading and never grows host memory past its capacity.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// The most a guest may write in one `write` call (what WASI streams usually allow).
const WRITE_PERMIT: usize = 64 << 10;

/// A clonable handle on one bounded tail buffer; stdout and stderr share one.
#[derive(Clone)]
pub struct LogPipe {
    inner: Arc<Mutex<Tail>>,
}

struct Tail {
    bytes: VecDeque<u8>,
    capacity: usize,
    dropped: u64,
}

impl LogPipe {
    /// A pipe keeping at most `capacity` bytes.
    pub fn new(capacity: usize) -> Self {
        LogPipe {
            inner: Arc::new(Mutex::new(Tail {
                bytes: VecDeque::new(),
                capacity,
                dropped: 0,
            })),
        }
    }

    fn push(&self, data: &[u8]) {
        let mut tail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let capacity = tail.capacity;
        let data = if data.len() > capacity {
            tail.dropped += (data.len() - capacity) as u64;
            &data[data.len() - capacity..]
        } else {
            data
        };
        let overflow = (tail.bytes.len() + data.len()).saturating_sub(capacity);
        if overflow > 0 {
            tail.bytes.drain(..overflow);
            tail.dropped += overflow as u64;
        }
        tail.bytes.extend(data);
    }

    /// Bytes dropped from the front so far.
    pub fn dropped(&self) -> u64 {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).dropped
    }

    /// The kept tail as text (lossy UTF-8), prefixed by how much was dropped, if anything.
    pub fn tail(&self) -> String {
        let tail = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (a, b) = tail.bytes.as_slices();
        let mut raw = Vec::with_capacity(a.len() + b.len());
        raw.extend_from_slice(a);
        raw.extend_from_slice(b);
        let text = String::from_utf8_lossy(&raw);
        if tail.dropped > 0 {
            format!("[{} earlier bytes dropped]\n{text}", tail.dropped)
        } else {
            text.into_owned()
        }
    }
}

impl IsTerminal for LogPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogPipe {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_tail_and_counts_what_it_dropped() {
        let pipe = LogPipe::new(8);
        pipe.push(b"hello ");
        pipe.push(b"world!");
        assert_eq!(pipe.dropped(), 4);
        assert!(pipe.tail().ends_with("o world!"), "{}", pipe.tail());
        pipe.push(&[b'x'; 100]);
        assert_eq!(pipe.dropped(), 4 + 8 + 92);
        assert!(pipe.tail().ends_with("xxxxxxxx"));
    }

    #[test]
    fn never_refuses_a_write() {
        let mut pipe = LogPipe::new(4);
        for _ in 0..1000 {
            assert!(OutputStream::write(&mut pipe, Bytes::from_static(b"0123456789")).is_ok());
            assert_eq!(pipe.check_write().ok(), Some(WRITE_PERMIT));
        }
        assert_eq!(pipe.dropped(), 10_000 - 4);
    }
}
