package pull

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"

	"github.com/mailvault/mailvault/backend"
	"github.com/mailvault/mailvault/pop3"
)

// runPOP3 archives the maildrop's messages whose UIDL was not archived
// before, in the server's order, into the archive mailbox's INBOX.
func (s *Puller) runPOP3(ctx context.Context, t *backend.Tenant, prof *Profile, pass string, st *State, rep *Report, pr *Progress) error {
	if _, ok := findMailbox(t, prof.Mailbox); !ok {
		return fmt.Errorf("archive mailbox %s: %w", prof.Mailbox, backend.ErrNotFound)
	}
	addr := net.JoinHostPort(prof.Host, strconv.Itoa(prof.port()))
	var cfg *tls.Config
	if prof.Security != SecurityNone {
		var err error
		if cfg, err = tlsConfig(prof); err != nil {
			return err
		}
	}
	c, err := pop3.Dial(addr, cfg, prof.Security == SecurityTLS, s.dialWait)
	if err != nil {
		return fmt.Errorf("connect to %s (%s): %w", addr, prof.Security, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := c.Login(prof.user(), pass); err != nil {
		return fmt.Errorf("log in to %s as %s: %w", prof.Host, prof.user(), err)
	}
	list, err := c.UIDL()
	if err != nil {
		return fmt.Errorf("UIDL: %w", err)
	}
	done := map[string]bool{}
	for _, u := range st.UIDLs {
		done[u] = true
	}
	// Ids the server no longer lists are dropped from the state.
	var kept []string
	var todo []pop3.Message
	for _, m := range list {
		if done[m.UID] {
			kept = append(kept, m.UID)
		} else {
			todo = append(todo, m)
		}
	}
	st.UIDLs = kept
	fr := FolderReport{Source: "INBOX", Archive: backend.FolderInbox}
	pr.Folder.Store(&fr.Archive)
	defer func() {
		rep.Folders = append(rep.Folders, fr)
		rep.Fetched += fr.Fetched
		rep.Archived += fr.Archived
		rep.Duplicates += fr.Duplicates
	}()
	for len(todo) > 0 && ctx.Err() == nil {
		n := min(len(todo), fetchChunk)
		chunk := todo[:n]
		todo = todo[n:]
		type outcome struct {
			uid string
			res backend.IngestResult
			err error
		}
		results := make([]outcome, len(chunk))
		var wg sync.WaitGroup
		sem := make(chan struct{}, ingestJobs)
		turns := backend.NewTurns()
		var retrErr error
		for i, m := range chunk {
			raw, err := c.Retr(m.N)
			if err != nil {
				retrErr = fmt.Errorf("RETR %d (%s): %w", m.N, m.UID, err)
				results = results[:i]
				break
			}
			fr.Fetched++
			pr.Fetched.Add(1)
			turn := turns.Next()
			sem <- struct{}{}
			wg.Add(1)
			go func(i int, uid string) {
				defer wg.Done()
				defer func() { <-sem }()
				res, err := t.IngestInTurn(ctx, raw, backend.Source{Mailbox: prof.Mailbox, Folder: backend.FolderInbox, Intake: backend.IntakeImport}, turn)
				results[i] = outcome{uid, res, err}
			}(i, m.UID)
		}
		wg.Wait()
		for _, r := range results {
			switch {
			case r.err != nil:
				fr.Errors++
				rep.Errors = append(rep.Errors, fmt.Sprintf("POP3 message %s: %v", r.uid, r.err))
				continue // not recorded: the next run tries it again
			case r.res.Duplicate && len(r.res.Placed) == 0:
				fr.Duplicates++
			default:
				fr.Archived++
				pr.Archived.Add(1)
			}
			st.UIDLs = append(st.UIDLs, r.uid)
		}
		slices.Sort(st.UIDLs)
		if err := saveState(context.WithoutCancel(ctx), t, prof.Name, st); err != nil {
			return err
		}
		if retrErr != nil {
			return retrErr
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.Quit()
}
