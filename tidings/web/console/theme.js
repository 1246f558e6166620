// The theme a person picked (light, dark, or none: follow the system), applied before
// the first paint: a classic script in <head> runs before the page renders, a module
// would run after. The console's own toggle writes the same key.
"use strict";
(function () {
  try {
    var theme = localStorage.getItem("tidings.theme");
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  } catch (e) {
    // storage blocked: follow the system
  }
})();
