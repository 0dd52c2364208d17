// The variables step: each variable says whether it is filled from a column, by a fixed text
// or not at all, as the marketer changes it (the server renders the same state on load).
(function () {
  "use strict";

  var STATES = {
    column: ["From a column", "badge-green"],
    text: ["Fixed text", "badge-blue"],
    none: ["Not mapped", "badge-yellow"]
  };

  function refresh(slot) {
    var select = slot.querySelector("select");
    var input = slot.querySelector("input[type=text]");
    var kind = select && select.value ? "column" : (input && input.value.trim() ? "text" : "none");
    var badge = slot.querySelector(".slot-state");
    if (!badge) return;
    badge.textContent = STATES[kind][0];
    badge.classList.remove("badge-green", "badge-blue", "badge-yellow");
    badge.classList.add(STATES[kind][1]);
    slot.classList.toggle("slot-unmapped", kind === "none");
    slot.classList.toggle("uses-column", kind === "column");
    var hint = slot.querySelector(".suggested");
    if (hint && kind !== "column") hint.remove();
  }

  document.querySelectorAll("#mapping-form .slot").forEach(function (slot) {
    slot.addEventListener("change", function () { refresh(slot); });
    slot.addEventListener("input", function () { refresh(slot); });
  });
})();
