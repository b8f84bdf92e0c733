package mailparse

import "testing"

func TestCalendarText(t *testing.T) {
	raw := "From: a@example.com\r\nSubject: Einladung\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:20240301T090000Z\r\nSUMMARY;LANGUAGE=3Dde:Quartalsbespr=C3=A4=\r\nchung\r\n" +
		"LOCATION:Besprechungs\r\n raum 2.17\\, Geb=C3=A4ude B\r\nDESCRIPTION:Agenda:\\nBudget\\;Personal\r\nUID:abc@example.com\r\n" +
		"END:VEVENT\r\nEND:VCALENDAR\r\n"
	s := Parse([]byte(raw), Options{})
	want := "Quartalsbesprächung\nBesprechungsraum 2.17, Gebäude B\nAgenda:\nBudget;Personal"
	if s.Text != want {
		t.Errorf("Text = %q, want %q", s.Text, want)
	}
}
