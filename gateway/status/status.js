// isthmus status page: refresh figures and charts every two seconds.
// Everything comes from this gateway's admin address; nothing from elsewhere.
(function () {
  "use strict";
  var charts = document.querySelector(".charts");
  var win = charts ? charts.getAttribute("data-window") : "600";
  function human(n) {
    var a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
    if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (a >= 1e3) return (n / 1e3).toFixed(1) + "k";
    return String(Math.round(n));
  }
  function set(id, text) {
    var el = document.getElementById(id);
    if (el) el.textContent = text;
  }
  function ratio(d) { return d.wire_bytes > 0 ? (d.raw_bytes / d.wire_bytes).toFixed(1) : "0.0"; }
  function chart(id, name) {
    return fetch("/chart/" + name + "?window=" + win).then(function (r) { return r.text(); }).then(function (svg) {
      var el = document.getElementById(id);
      if (el) el.innerHTML = svg;
    });
  }
  function refresh() {
    fetch("/api/status").then(function (r) { return r.json(); }).then(function (s) {
      var st = document.getElementById("link-state");
      if (st) {
        st.textContent = "link " + (s.link.up ? "up" : "down");
        st.className = "state " + (s.link.up ? "up" : "down");
      }
      set("peer", s.peer);
      set("ratio-out", ratio(s.out) + "×");
      set("ratio-in", ratio(s.in) + "×");
      set("rtt", Math.round(s.rtt_ms) + " ms");
      set("queued", String(s.link.waiting + s.link.unacked));
      set("oldest", Math.round(s.oldest_age_s) + " s");
      set("mirror", String(s.mirror.entries));
      set("s2s", s.s2s.in_connections + " / " + s.s2s.out_established);
      set("out-stanzas", String(s.out.stanzas_total));
      set("in-stanzas", String(s.in.stanzas_total));
      ["raw", "link", "wire"].forEach(function (k) {
        set("out-" + k, human(s.out[k + "_bytes"]));
        set("in-" + k, human(s.in[k + "_bytes"]));
      });
      set("spool", human(s.spool_bytes));
      set("updated", "updated " + new Date().toLocaleTimeString());
      document.body.setAttribute("data-refreshed", String(Date.now()));
    }).catch(function () { set("updated", "gateway not reachable"); });
    chart("chart-rate", "rate.svg");
    chart("chart-ratio", "ratio.svg");
  }
  refresh();
  setInterval(refresh, 2000);
})();
