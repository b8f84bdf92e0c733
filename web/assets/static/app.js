// The language switch submits itself; everything else works without scripts.
document.querySelectorAll("select.autosubmit").forEach(function (s) {
  s.addEventListener("change", function () { s.form.submit(); });
});
