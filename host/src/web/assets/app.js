// Flywheel web pages: the one script. Hand-written, no dependencies, no build step.
// Every page works without it; it adds:
//  - the annotation queue, one run at a time, with keyboard shortcuts and saving in place;
//  - progress that refreshes itself on pages with a [data-poll] section (grading runs).
// It never writes inline styles (the Content-Security-Policy forbids them): it sets classes.
"use strict";

(function () {
  // ---- Annotation queue -------------------------------------------------------------------
  function setUpQueue(queue) {
    var runs = Array.prototype.slice.call(queue.querySelectorAll("article.run"));
    if (runs.length === 0) {
      return;
    }
    document.body.classList.add("one-at-a-time");
    var current = 0;
    var k = document.getElementById("k");

    function show(index) {
      if (index < 0 || index >= runs.length) {
        return;
      }
      runs[current].classList.remove("current");
      current = index;
      runs[current].classList.add("current");
      if (k) {
        // The page's first run is number data-offset + 1 of the whole queue.
        k.textContent = String(Number(k.dataset.offset || 0) + current + 1);
      }
      runs[current].scrollIntoView({ block: "start" });
    }

    function form() {
      return runs[current].querySelector("form.annotate");
    }

    function choose(name, value) {
      var f = form();
      if (!f) {
        return;
      }
      var inputs = f.querySelectorAll('input[name="' + name + '"]');
      for (var i = 0; i < inputs.length; i++) {
        if (inputs[i].value === value) {
          inputs[i].checked = true;
        }
      }
    }

    function chooseMode(position) {
      var f = form();
      if (!f) {
        return;
      }
      var inputs = f.querySelectorAll('input[name="failure_mode"]');
      // Position 0 is "none", 1–9 the taxonomy's codes in order.
      if (position < inputs.length) {
        inputs[position].checked = true;
      }
    }

    function setStatus(f, text, failed) {
      var status = f.querySelector(".status");
      if (status) {
        status.textContent = text;
        status.classList.toggle("error", !!failed);
      }
    }

    function save() {
      var f = form();
      if (!f) {
        return;
      }
      var run = runs[current];
      setStatus(f, "Saving…", false);
      fetch(f.action, {
        method: "POST",
        headers: { Accept: "application/json" },
        body: new URLSearchParams(new FormData(f)),
        credentials: "same-origin",
      })
        .then(function (response) {
          return response.json().then(function (body) {
            return { ok: response.ok, body: body };
          });
        })
        .then(function (answer) {
          if (answer.ok) {
            run.classList.add("saved");
            setStatus(f, "Saved.", false);
            show(current + 1);
          } else {
            var e = answer.body && answer.body.error;
            setStatus(f, e ? e.code + ": " + e.message : "Not saved.", true);
          }
        })
        .catch(function () {
          setStatus(f, "Not saved: the server did not answer.", true);
        });
    }

    // Without the script the form posts and the page reloads; with it, Enter in the form or
    // the button saves in place too.
    runs.forEach(function (run) {
      var f = run.querySelector("form.annotate");
      if (f) {
        f.addEventListener("submit", function (event) {
          event.preventDefault();
          show(runs.indexOf(run));
          save();
        });
      }
    });

    document.addEventListener("keydown", function (event) {
      var target = event.target;
      var typing =
        target &&
        (target.tagName === "TEXTAREA" ||
          (target.tagName === "INPUT" && target.type === "text") ||
          target.tagName === "SELECT");
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        save();
        return;
      }
      if (typing) {
        if (event.key === "Escape") {
          target.blur();
        }
        return;
      }
      if (event.ctrlKey || event.metaKey || event.altKey) {
        return;
      }
      var key = event.key;
      if (key === "g") {
        choose("rating", "good");
      } else if (key === "b") {
        choose("rating", "bad");
      } else if (key === "n") {
        show(current + 1);
      } else if (key === "p") {
        show(current - 1);
      } else if (key === "f") {
        var f = form();
        var feedback = f && f.querySelector("textarea");
        if (feedback) {
          event.preventDefault();
          feedback.focus();
        }
        return;
      } else if (key >= "0" && key <= "9") {
        chooseMode(Number(key));
      } else {
        return;
      }
      event.preventDefault();
    });

    runs[0].classList.add("current");
  }

  // ---- Progress polling ----------------------------------------------------------------------
  // A section with data-poll is replaced by the same section of a fresh copy of the page every
  // second until the fresh copy no longer asks to be polled (the job finished). Bounded: it
  // stops after an hour, and on the first failed request.
  var POLL_MS = 1000;
  var MAX_POLLS = 3600;

  function poll(id, count) {
    if (count >= MAX_POLLS) {
      return;
    }
    window.setTimeout(function () {
      fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.text();
        })
        .then(function (text) {
          var fresh = new DOMParser().parseFromString(text, "text/html").getElementById(id);
          var old = document.getElementById(id);
          if (!fresh || !old) {
            return;
          }
          old.replaceWith(fresh);
          if (fresh.hasAttribute("data-poll")) {
            poll(id, count + 1);
          }
        })
        .catch(function () {
          /* stop polling; the page still shows the last state */
        });
    }, POLL_MS);
  }

  function start() {
    var queue = document.getElementById("queue");
    if (queue) {
      setUpQueue(queue);
    }
    var polled = document.querySelectorAll("[data-poll][id]");
    for (var i = 0; i < polled.length; i++) {
      poll(polled[i].id, 0);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
