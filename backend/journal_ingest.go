package backend

import (
	"context"
	"fmt"
	"time"
)

// FolderJournalReports is the folder of the journal mailbox that keeps the
// envelope journal reports as received, as evidence of who got a message.
const FolderJournalReports = "Journal reports"

// JournalCopy is one journaled message as a journaling server delivered it.
type JournalCopy struct {
	// Original is archived byte-exact in the journal mailbox and in the
	// archive mailboxes of its sender and recipients.
	Original []byte
	// Report is the envelope journal report that wrapped Original, or nil
	// when the original came without a wrapper.
	Report []byte
	// Sender and Recipients are the original envelope, as far as known;
	// journal addresses among them are ignored.
	Sender     string
	Recipients []string
	Received   time.Time
	// Problem, when set, says why Original, which announced itself as an
	// envelope journal report, could not be unwrapped (cut off, no
	// original attached). Such a report is kept as received in the journal
	// mailbox's FolderJournalReports only, as the evidence: what it wraps
	// is not known to be the message, so no other mailbox gets it.
	Problem string
}

// IngestJournal archives a journal copy and returns when it is durable: the
// original with its envelope, and the report, if any, in the journal
// mailbox's FolderJournalReports. Delivering the same original again (a
// retry, or another report for it) adds the newly named recipients to the
// one stored copy.
func (t *Tenant) IngestJournal(ctx context.Context, c JournalCopy) (IngestResult, error) {
	if c.Problem != "" {
		return t.ingestMalformedReport(ctx, c)
	}
	src := Source{Journal: true, Received: c.Received, Intake: IntakeSMTP}
	if !t.IsJournalAddress(c.Sender) {
		src.Sender = c.Sender
	}
	for _, r := range c.Recipients {
		if !t.IsJournalAddress(r) {
			src.Recipients = append(src.Recipients, r)
		}
	}
	if c.Report == nil {
		return t.Ingest(ctx, c.Original, src)
	}
	id, err := t.journalMailbox(ctx)
	if err != nil {
		return IngestResult{}, err
	}
	t.mu.RLock()
	journal := t.mailboxes[id].Address
	t.mu.RUnlock()
	// Both go into one group commit instead of waiting for two.
	reportErr := make(chan error, 1)
	go func() {
		_, err := t.Ingest(ctx, c.Report, Source{Mailbox: journal, Folder: FolderJournalReports, Received: c.Received, Intake: IntakeSMTP})
		reportErr <- err
	}()
	res, err := t.Ingest(ctx, c.Original, src)
	if rerr := <-reportErr; err == nil && rerr != nil {
		err = fmt.Errorf("keep journal report: %w", rerr)
	}
	return res, err
}

// ingestMalformedReport keeps a report that could not be unwrapped in the
// journal mailbox only.
func (t *Tenant) ingestMalformedReport(ctx context.Context, c JournalCopy) (IngestResult, error) {
	id, err := t.journalMailbox(ctx)
	if err != nil {
		return IngestResult{}, err
	}
	t.mu.RLock()
	journal := t.mailboxes[id].Address
	t.mu.RUnlock()
	res, err := t.Ingest(ctx, c.Original, Source{Mailbox: journal, Folder: FolderJournalReports, Received: c.Received, Intake: IntakeSMTP})
	if err != nil {
		return res, fmt.Errorf("keep malformed journal report: %w", err)
	}
	t.log.Warn("malformed journal report kept in the journal mailbox only", "problem", c.Problem,
		"mailbox", journal, "folder", FolderJournalReports, "mid", res.MID, "size", len(c.Original), "duplicate", res.Duplicate)
	return res, nil
}
