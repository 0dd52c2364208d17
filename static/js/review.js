// The review step: schedule in the marketer's own time zone, as the browser knows it.
(function () {
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  var field = document.getElementById("tz");
  var label = document.getElementById("tz-label");
  if (zone && field && label) {
    field.value = zone;
    label.textContent = zone;
  }
  // A saved deadline is shown in the same zone the form is read in.
  var deadline = document.querySelector("input[name=deadline][data-utc]");
  if (zone && deadline) {
    var at = new Date(deadline.dataset.utc);
    var local = new Date(at.getTime() - at.getTimezoneOffset() * 60000);
    deadline.value = local.toISOString().slice(0, 16);
  }
})();
