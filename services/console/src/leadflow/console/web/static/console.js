// SLA countdowns keep ticking between the queue's refreshes (the server renders the first
// value; this only advances it and turns it red once the deadline has passed).
(function () {
  function span(s) {
    var d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
    var m = Math.floor((s % 3600) / 60), x = s % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + String(m).padStart(2, "0") + "m";
    return m + "m " + String(x).padStart(2, "0") + "s";
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time[data-due]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.due) - now) / 1000);
      var late = left < 0;
      el.textContent = late ? "breached " + span(-left) + " ago" : span(left) + " left";
      el.classList.toggle("breached", late);
    });
  }
  setInterval(tick, 1000);
})();

// The queue refreshes itself every 5 s by replacing its rows, which would drop the focus of
// someone working it by keyboard (or typing a note): while the focus is inside the queue,
// the refresh waits for the next tick.
document.addEventListener("htmx:beforeRequest", function (e) {
  var queue = document.getElementById("queue");
  var focused = document.activeElement;
  if (queue && e.detail.elt === queue && focused && focused !== queue && queue.contains(focused)) {
    e.preventDefault();
  }
});
