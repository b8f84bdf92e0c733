package web

import (
	"net/http"
	"strings"
)

// catalogue holds the interface strings per language; English is the
// fallback for a key a language lacks.
var catalogue = map[string]map[string]string{
	"en": {
		"title":       "mailvault archive",
		"login":       "Log in",
		"login.name":  "Login (name@domain)",
		"password":    "Password",
		"login.bad":   "Wrong login or password.",
		"login.busy":  "Too many attempts; try again later.",
		"logout":      "Log out",
		"mailboxes":   "Mailboxes",
		"search":      "Search",
		"words":       "Words",
		"from":        "From",
		"to":          "To",
		"cc":          "Cc",
		"subject":     "Subject",
		"date":        "Date",
		"after":       "Sent on or after",
		"before":      "Sent before",
		"size":        "Size",
		"messages":    "messages",
		"none":        "No messages.",
		"prev":        "Newer",
		"next":        "Older",
		"page":        "Page",
		"of":          "of",
		"attachments": "Attachments",
		"original":    "Show original",
		"eml":         "Download .eml",
		"back":        "Back to the list",
		"html":        "HTML body (remote content blocked)",
		"plain":       "Text body",
		"nobody":      "This message has no text body.",
		"language":    "Language",
		"notfound":    "Not found, or you may not read it.",
		"csrf":        "The form expired or came from another site; reload the page and try again.",
		"hits":        "hits",
		"choose":      "Choose a folder.",
		"retention":   "Retention and holds",
		"export":      "Export these messages",
		"hasatt":      "With attachments",
		"everywhere":  "Search all mailboxes",
		"format":      "Format",
		"received":    "Received",
		"archived":    "Archived",
		"policy":      "Policy",
		"keepuntil":   "Kept at least until",
		"maxuntil":    "Kept at most until",
		"holds":       "Legal holds",
		"noholds":     "No legal hold.",
		"deletable":   "May be deleted now",
		"yes":         "yes",
		"no":          "no",
		"pending":     "The index has not caught up with this message yet; policies with searches are not applied to it yet.",
	},
	"de": {
		"title":       "mailvault-Archiv",
		"login":       "Anmelden",
		"login.name":  "Anmeldename (name@domain)",
		"password":    "Passwort",
		"login.bad":   "Anmeldename oder Passwort falsch.",
		"login.busy":  "Zu viele Versuche; bitte später erneut versuchen.",
		"logout":      "Abmelden",
		"mailboxes":   "Postfächer",
		"search":      "Suchen",
		"words":       "Suchbegriffe",
		"from":        "Von",
		"to":          "An",
		"cc":          "Kopie",
		"subject":     "Betreff",
		"date":        "Datum",
		"after":       "Gesendet ab",
		"before":      "Gesendet vor",
		"size":        "Größe",
		"messages":    "Nachrichten",
		"none":        "Keine Nachrichten.",
		"prev":        "Neuere",
		"next":        "Ältere",
		"page":        "Seite",
		"of":          "von",
		"attachments": "Anhänge",
		"original":    "Original anzeigen",
		"eml":         ".eml herunterladen",
		"back":        "Zurück zur Liste",
		"html":        "HTML-Inhalt (externe Inhalte blockiert)",
		"plain":       "Textinhalt",
		"nobody":      "Diese Nachricht hat keinen Textinhalt.",
		"language":    "Sprache",
		"notfound":    "Nicht gefunden oder keine Leseberechtigung.",
		"csrf":        "Das Formular ist abgelaufen oder kam von einer anderen Seite; bitte neu laden.",
		"hits":        "Treffer",
		"choose":      "Bitte einen Ordner wählen.",
		"retention":   "Aufbewahrung und Sperren",
		"export":      "Diese Nachrichten exportieren",
		"hasatt":      "Mit Anhängen",
		"everywhere":  "In allen Postfächern suchen",
		"format":      "Format",
		"received":    "Empfangen",
		"archived":    "Archiviert",
		"policy":      "Richtlinie",
		"keepuntil":   "Aufbewahrt mindestens bis",
		"maxuntil":    "Aufbewahrt höchstens bis",
		"holds":       "Rechtliche Sperren",
		"noholds":     "Keine rechtliche Sperre.",
		"deletable":   "Jetzt löschbar",
		"yes":         "ja",
		"no":          "nein",
		"pending":     "Der Index ist noch nicht nachgezogen; Richtlinien mit Suchen gelten noch nicht.",
	},
}

// lang picks the language: the lang cookie set by the switch, else the
// first supported language of Accept-Language, else English.
func lang(r *http.Request) string {
	if c, err := r.Cookie("lang"); err == nil {
		if _, ok := catalogue[c.Value]; ok {
			return c.Value
		}
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if _, ok := catalogue[base]; ok {
			return base
		}
	}
	return "en"
}

// text returns the string of key in language l.
func text(l, key string) string {
	if s, ok := catalogue[l][key]; ok {
		return s
	}
	if s, ok := catalogue["en"][key]; ok {
		return s
	}
	return key
}
