// Follows one build as it runs: its events arrive as server-sent events (the stage messages and the build log,
// then the image or the error). On the builds list, reloads it when a build starts or ends anywhere on the home.
// Shipped with envbuild; nothing is fetched from elsewhere.
(function () {
  "use strict";
  var list = document.getElementById("builds-page");
  if (list) {
    window.setInterval(function () {
      fetch("/api/builds").then(function (response) { return response.json(); }).then(function (rows) {
        var signature = rows.map(function (row) { return row.id + ":" + row.state; }).join(",");
        if (signature !== list.dataset.signature) { window.location.reload(); }
      });
    }, 2000);
  }
  var page = document.getElementById("build");
  if (!page) { return; }
  var log = document.getElementById("log");
  var state = document.getElementById("state");
  var result = document.getElementById("result");

  function line(text, kind) {
    var row = document.createElement("span");
    row.className = kind;
    row.textContent = text + "\n";
    var atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.appendChild(row);
    if (atBottom) { log.scrollTop = log.scrollHeight; }
  }

  function field(name, value) {
    var dt = document.createElement("dt");
    dt.textContent = name;
    var dd = document.createElement("dd");
    var code = document.createElement("code");
    code.textContent = value;
    dd.appendChild(code);
    return [dt, dd];
  }

  function finish(cls, text) {
    state.className = "state " + cls;
    state.textContent = text;
  }

  var source = new EventSource(page.dataset.events);
  source.onmessage = function (message) {
    var event = JSON.parse(message.data);
    if (event.event === "start") {
      line("envbuild: building " + (event.name || "") + (event.version ? ":" + event.version : ""), "stage");
    } else if (event.event === "progress") {
      line("envbuild: " + event.stage + ": " + event.message, "stage");
    } else if (event.event === "log") {
      line(event.line, "out");
    } else if (event.event === "end") {
      var list = document.createElement("dl");
      list.className = "facts";
      list.id = "image";
      [["image", event.image.image], ["key", event.image.key], ["source", event.image.source],
       ["id", event.image.id], ["seconds", event.image.seconds.toFixed(1)]].forEach(function (pair) {
        field(pair[0], pair[1]).forEach(function (node) { list.appendChild(node); });
      });
      result.appendChild(list);
      result.hidden = false;
      finish("done", "done: " + event.image.source);
    } else if (event.event === "error") {
      line(event.message, "error-text");
      finish("failed", "failed");
    }
  };
  source.addEventListener("done", function () { source.close(); });
})();
