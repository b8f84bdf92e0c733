package imapserver_test

// Tests of the QRESYNC patch (see third_party/README.md).

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// qresyncSession records the QRESYNC parameter and the FETCH options it is
// asked for, and answers VANISHED with fixed UIDs.
type qresyncSession struct {
	imapserver.Session
	selected *imap.SelectQResync
	fetched  string
}

func (s *qresyncSession) Select(mailbox string, options *imap.SelectOptions) (*imap.SelectData, error) {
	s.selected = options.QResync
	data, err := s.Session.Select(mailbox, options)
	if data != nil {
		data.UIDValidity, data.HighestModSeq = 7, 40
	}
	return data, err
}

func (s *qresyncSession) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	s.fetched = fmt.Sprintf("%v uid=%v flags=%v modseq=%v since=%d vanished=%v", numSet, options.UID, options.Flags, options.ModSeq, options.ChangedSince, options.Vanished)
	if options.Vanished {
		if err := w.WriteVanished(imap.UIDSet{{Start: 3, Stop: 4}, {Start: 9, Stop: 9}}); err != nil {
			return err
		}
	}
	return nil
}

func TestQResync(t *testing.T) {
	mem := imapmemserver.New()
	u := imapmemserver.NewUser("user", "pass")
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(u)
	var sess *qresyncSession
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			sess = &qresyncSession{Session: mem.NewSession()}
			return sess, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapCondStore: {}, imap.CapQResync: {}},
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := dial(t, ln.Addr().String())
	c.want("LOGIN user pass", "OK")
	if caps := c.want("CAPABILITY", "OK")[0]; !strings.Contains(caps, " QRESYNC") {
		t.Errorf("capabilities %q lack QRESYNC", caps)
	}
	c.want("SELECT INBOX (QRESYNC (7 30))", "BAD") // not enabled
	if got := c.want("ENABLE QRESYNC", "OK"); !slices.Equal(got, []string{"* ENABLED QRESYNC"}) {
		t.Errorf("ENABLE QRESYNC: %q", got)
	}
	got := c.want("SELECT INBOX (QRESYNC (7 30 1:5,9 (2:3 4,5)))", "OK")
	if q := sess.selected; q == nil || q.UIDValidity != 7 || q.ModSeq != 30 || q.KnownUIDs.String() != "1:5,9" ||
		q.SeqMatchSeqNums.String() != "2:3" || q.SeqMatchUIDs.String() != "4:5" {
		t.Errorf("QRESYNC parameter read as %+v", q)
	}
	if want := "1:5,9 uid=true flags=true modseq=true since=30 vanished=true"; sess.fetched != want {
		t.Errorf("resync fetched %q, want %q", sess.fetched, want)
	}
	if !slices.Contains(got, "* VANISHED (EARLIER) 3:4,9") || !slices.Contains(got, "* OK [HIGHESTMODSEQ 40] Highest") {
		t.Errorf("SELECT (QRESYNC): %q", got)
	}
	sess.fetched = ""
	c.want("EXAMINE INBOX (QRESYNC (8 30))", "OK") // another UIDVALIDITY
	if sess.fetched != "" {
		t.Errorf("resync after a UIDVALIDITY change: %q", sess.fetched)
	}
	c.want("EXAMINE INBOX (QRESYNC (7 30) CONDSTORE)", "OK")
	c.want("EXAMINE INBOX (QRESYNC (7))", "BAD")
	c.want("EXAMINE INBOX (QRESYNC (0 30))", "BAD")
	c.want("UID FETCH 1:* FLAGS (CHANGEDSINCE 12 VANISHED)", "OK")
	if want := "1:* uid=true flags=true modseq=true since=12 vanished=true"; sess.fetched != want {
		t.Errorf("UID FETCH (CHANGEDSINCE VANISHED) fetched %q, want %q", sess.fetched, want)
	}
	c.want("UID FETCH 1:* FLAGS (VANISHED)", "BAD")             // without CHANGEDSINCE
	c.want("FETCH 1:* FLAGS (CHANGEDSINCE 12 VANISHED)", "BAD") // not UID FETCH
	c.want("UID FETCH 1:* FLAGS (CHANGEDSINCE 12 UNKNOWN)", "BAD")
}
