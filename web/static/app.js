// Passerelle: the little script the page uses, embedded in the binary. The page works
// without it; with it, a form marked data-confirm asks before it is sent, and
// notifications arrive live (server-sent events from /events: counts and referral ids,
// never personal data), shown in the notifications area and counted in the page's title.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

(function () {
  var area = document.getElementById("notifications");
  if (!area || !window.EventSource) {
    return;
  }
  var baseTitle = document.title;
  var source = new EventSource(area.getAttribute("data-events"));
  source.addEventListener("counts", function (message) {
    var counts = JSON.parse(message.data);
    var lines = [];
    function line(count, key) {
      if (count > 0) {
        lines.push(count + " " + area.getAttribute("data-" + key));
      }
    }
    line(counts.incoming, "incoming");
    line(counts.case_files, "case-files");
    line(counts.due_soon, "due-soon");
    line(counts.overdue, "overdue");
    line(counts.proposals, "proposals");
    while (area.firstChild) {
      area.removeChild(area.firstChild);
    }
    lines.forEach(function (text) {
      var p = document.createElement("p");
      p.className = "notice";
      p.textContent = text;
      area.appendChild(p);
    });
    (counts.incoming_ids || []).forEach(function (id) {
      var a = document.createElement("a");
      a.href = "/referral/" + encodeURIComponent(id);
      a.className = "notice-link";
      a.textContent = id;
      area.appendChild(a);
      area.appendChild(document.createTextNode(" "));
    });
    var total = (counts.incoming || 0) + (counts.proposals || 0);
    document.title = total > 0 ? "(" + total + ") " + baseTitle : baseTitle;
  });
})();
