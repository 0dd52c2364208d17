// The review step: schedule in the marketer's own time zone, as the browser knows it.
(function () {
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  var field = document.getElementById("tz");
  var label = document.getElementById("tz-label");
  if (zone && field && label) {
    field.value = zone;
    label.textContent = zone;
  }
})();
