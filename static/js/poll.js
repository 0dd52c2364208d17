// Elements marked data-poll-when-visible skip their htmx poll while the tab is hidden. This
// replaces htmx's `every 3s [document.visibilityState === 'visible']` filter, which htmx
// evaluates as a string and the Content-Security-Policy forbids.
document.addEventListener("htmx:beforeRequest", function (event) {
  var element = event.detail.elt;
  if (document.visibilityState !== "visible" && element.hasAttribute("data-poll-when-visible")) {
    event.preventDefault();
  }
});
