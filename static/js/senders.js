// Drag a template to reorder it; the numbers are renumbered in the new order and saved with
// the form, exactly like typing them or using the arrows.
document.querySelectorAll("fieldset[data-phone] .template-choices").forEach(function (list) {
  var dragged = null;
  list.querySelectorAll("li[data-template]").forEach(function (item) {
    item.draggable = true;
    item.addEventListener("dragstart", function () { dragged = item; });
    item.addEventListener("dragover", function (event) { event.preventDefault(); });
    item.addEventListener("drop", function (event) {
      event.preventDefault();
      if (!dragged || dragged === item) { return; }
      var after = item.compareDocumentPosition(dragged) & Node.DOCUMENT_POSITION_PRECEDING;
      list.insertBefore(dragged, after ? item.nextSibling : item);
      var position = 0;
      list.querySelectorAll("li[data-template] input.order").forEach(function (input) {
        if (input.value) { input.value = ++position; }
      });
    });
  });
});
