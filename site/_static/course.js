// From file:// a browser refuses the fetches that show a search result's summary (and logs an error for each):
// there, search lists the matching pages without summaries; served over http, it shows them.
if (window.location.protocol === "file:" && window.DOCUMENTATION_OPTIONS) {
  DOCUMENTATION_OPTIONS.SHOW_SEARCH_SUMMARY = false;
}
