// A form with data-confirm="Question?" submits only once the question is answered yes. It
// listens on the document, in the capture phase, so it runs before htmx's own submit handler
// and also covers forms htmx swaps in later.
document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopPropagation();
  }
}, true);
