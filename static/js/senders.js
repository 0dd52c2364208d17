// Drag a template row to reorder; the numbers are renumbered in the new order and saved with
// the form, exactly like typing them or using the arrows.
document.querySelectorAll("fieldset[data-phone] tbody").forEach(function (body) {
  var dragged = null;
  body.querySelectorAll("tr[data-template]").forEach(function (row) {
    row.draggable = true;
    row.addEventListener("dragstart", function () { dragged = row; });
    row.addEventListener("dragover", function (event) { event.preventDefault(); });
    row.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!dragged || dragged === row) { return; }
      var after = row.compareDocumentPosition(dragged) & Node.DOCUMENT_POSITION_PRECEDING;
      body.insertBefore(dragged, after ? row.nextSibling : row);
      var position = 0;
      body.querySelectorAll("tr[data-template] input[type=number]").forEach(function (input) {
        if (input.value) { input.value = ++position; }
      });
    });
  });
});
