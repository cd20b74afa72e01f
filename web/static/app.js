// Passerelle: the little script the page uses, embedded in the binary. The page works
// without it; with it, a form marked data-confirm asks before it is sent.
"use strict";
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
