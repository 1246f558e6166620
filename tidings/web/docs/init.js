// Swagger UI over this server's own /openapi.json (relative, so /v1/docs reads
// /v1/openapi.json and a reverse proxy's path prefix is kept). An external file:
// the page's Content-Security-Policy allows no inline script.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  window.ui = window.SwaggerUIBundle({
    url: new URL("openapi.json", document.baseURI).href,
    dom_id: "#ui",
    deepLinking: true,
    validatorUrl: null, // the default badge asks a public validator service
  });
});
