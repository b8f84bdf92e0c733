package jmap

import (
	"os"
	"path/filepath"
	"time"
)

type handcraftedMsg struct {
	name, mailbox, folder string
	raw                   []byte
	received              time.Time
}

// handcrafted are the MIME messages in testdata, in ingest order: the
// orphan reply comes before its parent, as an import of Sent before INBOX
// does it.
func handcrafted() []handcraftedMsg {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	list := []handcraftedMsg{
		{name: "alternative", mailbox: alice, received: at("2023-03-14T07:31:00Z")},
		{name: "related", mailbox: alice, received: at("2023-03-15T10:01:00Z")},
		{name: "latin1", mailbox: alice, received: at("2023-04-07T09:01:00Z")},
		{name: "thread1", mailbox: alice, folder: "Projects", received: at("2023-04-03T08:01:00Z")},
		{name: "thread2", mailbox: alice, folder: "Projects/Alpha", received: at("2023-04-03T09:01:00Z")},
		{name: "thread3", mailbox: alice, folder: "Projects/Alpha", received: at("2023-04-03T10:01:00Z")},
		{name: "orphan-reply", mailbox: alice, received: at("2023-04-04T12:01:00Z")},
		{name: "orphan-parent", mailbox: alice, received: at("2023-04-04T08:01:00Z")},
		{name: "forward", mailbox: "sales@acme.example", received: at("2023-04-06T14:01:00Z")},
	}
	for i := range list {
		b, err := os.ReadFile(filepath.Join("testdata", list[i].name+".eml"))
		if err != nil {
			panic(err)
		}
		list[i].raw = b
	}
	return list
}
