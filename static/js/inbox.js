// Keeps the conversation scrolled to the newest message, unless the reader scrolled up to read
// older ones while the thread refreshed.
(function () {
  "use strict";

  var stickToBottom = true;

  function thread() {
    return document.getElementById("thread");
  }

  function scrollDown() {
    var box = thread();
    if (box && stickToBottom) box.scrollTop = box.scrollHeight;
  }

  document.addEventListener("DOMContentLoaded", scrollDown);
  document.addEventListener("htmx:beforeSwap", function () {
    var box = thread();
    if (box) stickToBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  });
  document.addEventListener("htmx:afterSettle", scrollDown);
})();
