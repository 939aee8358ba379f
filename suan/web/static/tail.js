// The live tail of a rank's log: polls /ui/jobs/<id>/log from the last offset and appends
// what is new to <pre id="log">, keeping its last KEEP characters; stops once the job ended
// and its log is read to the end.
"use strict";
(function () {
  const KEEP = 200000;
  const EVERY_MS = 1000;
  const pre = document.getElementById("log");
  const state = document.getElementById("log-state");
  let offset = 0;
  async function poll() {
    const answer = await fetch(pre.dataset.source + "&offset=" + offset,
                               { credentials: "same-origin" });
    if (!answer.ok) {
      pre.dataset.error = String(answer.status);
      return;
    }
    const chunk = await answer.json();
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    if (chunk.data) {
      pre.textContent = (pre.textContent + chunk.data).slice(-KEEP);
      if (atEnd) pre.scrollTop = pre.scrollHeight;
    }
    const more = chunk.next_offset > offset;
    offset = chunk.next_offset;
    state.textContent = chunk.state;
    pre.dataset.offset = String(offset);
    if (more) setTimeout(poll, 0);
    else if (!chunk.final) setTimeout(poll, EVERY_MS);
    else pre.dataset.done = "true";
  }
  poll();
})();
