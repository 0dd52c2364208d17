// Swagger UI over the schema, with the session's CSRF token on the requests tried from the page
// (the session authenticates them, and Django wants the token on every unsafe method).
document.addEventListener("DOMContentLoaded", function () {
  var element = document.getElementById("swagger-ui");
  if (!element || typeof SwaggerUIBundle === "undefined") {
    return;
  }
  SwaggerUIBundle({
    url: element.dataset.schemaUrl,
    domNode: element,
    deepLinking: true,
    docExpansion: "list",
    requestInterceptor: function (request) {
      request.headers["X-CSRFToken"] = element.dataset.csrfToken;
      return request;
    },
  });
});
