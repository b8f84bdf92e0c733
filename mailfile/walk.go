package mailfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Message is one message found by Walk.
type Message struct {
	// Raw holds the message bytes exactly as stored; for mbox files, the
	// bytes between the separators with mboxrd quoting undone.
	Raw []byte
	// Folder is the folder relative to the import root, "/"-separated, ""
	// for the top level and for a root that is a file. It is the directory
	// of a message file, the path of an mbox file without ".mbox" or
	// ".mbx" (the directory for an mbox named .eml or .msg), the directory of a Maildir with a Maildir++ folder ".A.b"
	// appended as "A/b" (decoded from modified UTF-7 where it is). The
	// directory suffixes ".sbd" (Thunderbird) and ".mbox" (Apple Mail,
	// whose "X.mbox/mbox" is folder "X") are dropped.
	Folder string
	// Source says where the message came from, for progress and error
	// reports: the file path, with "#n" for the n-th message of an mbox.
	Source string
	// Date is the time to use as INTERNALDATE: for message files and
	// Maildir the message's Date field, else its last Received field's
	// date, else the file's modification time; for mbox the date of the
	// From_ line, else the header's as for files; zero when none is known.
	Date time.Time
	// Flags are the IMAP flags and keywords of a Maildir file name's info
	// (S \Seen, R \Answered, F \Flagged, T \Deleted, D \Draft,
	// P $Forwarded, a-z Dovecot keywords); nil for other files.
	Flags []string
}

// Walk finds the messages under root and calls fn for each, in a stable
// order: by name, depth first, a Maildir's own messages (cur and new merged)
// before its subfolders. Root may be a file or a directory; Source paths
// start with it.
//
// A file is a message when it starts with an RFC 5322 header, an mbox when
// it starts with "From ", whatever its name. A directory with cur or new is
// a Maildir (tmp is ignored, as its messages are not yet delivered), any
// other directory is searched for Maildirs, mbox and message files. Hidden
// directories that are not Maildir++ folders, and known bookkeeping files of
// mail programs, are skipped; symbolic links to directories are not
// followed.
//
// Empty files and mbox entries are messages of zero bytes, archived as
// they are (as SMTP archives an empty DATA). Problems with single entries
// (unreadable files, files that are no mail) are passed to onError with
// the entry's source, and the walk goes on; with a nil onError the first one ends the walk and is
// returned. Walk stops when fn returns an error or ctx is done, and returns
// that error.
//
// fn must not keep msg or msg.Raw after it returns: both are reused for the
// next message. Copy Raw (bytes.Clone) to keep it.
func Walk(ctx context.Context, root string, fn func(msg *Message) error, onError func(source string, err error)) error {
	w := &walker{ctx: ctx, fn: fn, onError: onError}
	return w.root(root)
}

// Count counts the messages under root and the bytes they hold as Walk
// would, for a progress display, without holding any message in memory:
// Maildir and message files are only looked at, mbox files are read. Entries
// Walk would report are left out. err is set only when root cannot be read
// or ctx is done.
func Count(ctx context.Context, root string) (messages int, bytes int64, err error) {
	w := &walker{ctx: ctx, onError: func(string, error) {}}
	err = w.root(root)
	return w.messages, w.bytes, err
}

// walker holds the state of one Walk or Count; fn is nil when counting.
type walker struct {
	ctx     context.Context
	fn      func(*Message) error
	onError func(source string, err error)

	messages int
	bytes    int64

	msg   Message     // passed to fn, reused
	buf   []byte      // file contents, reused
	flags []string    // Maildir flags, reused
	mbox  *MboxReader // reused across mbox files
}

// report passes a problem with one entry to onError; a non-nil result
// stops the walk.
func (w *walker) report(source string, err error) error {
	if w.onError == nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	w.onError(source, err)
	return nil
}

// emit passes w.msg to fn, or only counts it.
func (w *walker) emit(size int) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	w.messages++
	w.bytes += int64(size)
	if w.fn == nil {
		return nil
	}
	if err := w.fn(&w.msg); err != nil {
		return fmt.Errorf("%s: %w", w.msg.Source, err)
	}
	return nil
}

func (w *walker) root(root string) error {
	fi, err := os.Stat(root)
	if err != nil {
		return fmt.Errorf("import root: %w", err)
	}
	switch {
	case fi.IsDir() && isMaildir(root):
		return w.maildir(root, "")
	case fi.IsDir():
		return w.dir(root, "", false)
	case fi.Mode().IsRegular():
		// An mbox file given alone is a folder named after it, as it is
		// inside a directory; a message file goes into INBOX.
		return w.file(root, "", mboxFolderName(filepath.Base(root), false))
	}
	return fmt.Errorf("import root %s: not a file or directory", root)
}

// dir walks a directory that is not a Maildir, or the rest of one after its
// messages (inMaildir).
func (w *walker) dir(dir, folder string, inMaildir bool) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return w.report(dir, err)
	}
	appleMbox := strings.HasSuffix(filepath.Base(dir), ".mbox")
	for _, e := range entries {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		p := filepath.Join(dir, name)
		typ := e.Type()
		if typ&fs.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if err != nil {
				if err := w.report(p, err); err != nil {
					return err
				}
				continue
			}
			if fi.IsDir() {
				if err := w.report(p, errors.New("symbolic link to a directory, not followed")); err != nil {
					return err
				}
				continue
			}
			typ = fi.Mode().Type()
		}
		if isMetadataFile(name) || inMaildir && typ.IsDir() && (name == "cur" || name == "new" || name == "tmp") {
			continue
		}
		switch {
		case typ.IsDir() && strings.HasPrefix(name, "."):
			if isMaildir(p) {
				err = w.maildir(p, path.Join(folder, maildirPlusFolder(name)))
			}
		case typ.IsDir():
			sub := path.Join(folder, strings.TrimSuffix(strings.TrimSuffix(name, ".sbd"), ".mbox"))
			if isMaildir(p) {
				err = w.maildir(p, sub)
			} else {
				err = w.dir(p, sub, false)
			}
		case typ.IsRegular():
			// A message file saved with a From_ line is an mbox too, but
			// its name says it is no folder.
			err = w.file(p, folder, path.Join(folder, mboxFolderName(name, appleMbox)))
		default:
			err = w.report(p, fmt.Errorf("%w: not a regular file", ErrNotMail))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// maildirEntry is a message file in a Maildir's cur or new.
type maildirEntry struct {
	sub  string
	file fs.DirEntry
}

// maildir walks a Maildir: its messages, then what else the directory holds.
func (w *walker) maildir(dir, folder string) error {
	kw, err := readMaildirKeywords(dir)
	if err != nil {
		if err := w.report(dir, err); err != nil {
			return err
		}
	}
	var files []maildirEntry
	for _, sub := range [...]string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			if err := w.report(filepath.Join(dir, sub), err); err != nil {
				return err
			}
		}
		for _, e := range entries {
			// Hidden files are not messages (Maildir spec); directories
			// there are nobody's.
			if !e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
				files = append(files, maildirEntry{sub, e})
			}
		}
	}
	// Names start with the delivery time: sorting merges cur and new in
	// about the order of arrival.
	slices.SortFunc(files, func(a, b maildirEntry) int {
		return strings.Compare(a.file.Name(), b.file.Name())
	})
	for _, f := range files {
		p := filepath.Join(dir, f.sub, f.file.Name())
		w.flags = appendMaildirFlags(w.flags[:0], f.file.Name(), &kw)
		w.msg = Message{Folder: folder, Source: p}
		if len(w.flags) > 0 {
			w.msg.Flags = w.flags
		}
		if err := w.maildirFile(p, f.file); err != nil {
			return err
		}
	}
	return w.dir(dir, folder, true)
}

// maildirFile reads or counts one Maildir message into w.msg.
func (w *walker) maildirFile(p string, e fs.DirEntry) error {
	if w.fn == nil {
		fi, err := e.Info()
		if err == nil && e.Type()&fs.ModeSymlink != 0 {
			fi, err = os.Stat(p)
		}
		if err != nil {
			return nil // Walk reports it
		}
		return w.emit(int(fi.Size()))
	}
	f, err := os.Open(p)
	if err != nil {
		return w.report(p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil {
		w.buf, err = readAll(f, w.buf[:0], fi.Size())
	}
	if err != nil {
		return w.report(p, err)
	}
	w.msg.Raw = w.buf
	w.msg.Date = fi.ModTime()
	if d, ok := headerDate(w.buf); ok {
		w.msg.Date = d
	}
	return w.emit(len(w.buf))
}

// file handles a file outside Maildirs: a message, which goes to folder, an
// mbox, which goes to mboxFolder, or something to report.
// mboxFolderName is the folder an mbox file called name stands for: its
// name without .mbox/.mbx; "" (its parent's folder) for the "mbox" file of
// an Apple Mail .mbox directory and for message files (.eml, .msg) that
// turn out to be in mbox format.
func mboxFolderName(name string, inAppleMbox bool) string {
	ext := filepath.Ext(name)
	if inAppleMbox && name == "mbox" || strings.EqualFold(ext, ".eml") || strings.EqualFold(ext, ".msg") {
		return ""
	}
	return strings.TrimSuffix(strings.TrimSuffix(name, ".mbox"), ".mbx")
}

func (w *walker) file(p, folder, mboxFolder string) error {
	f, err := os.Open(p)
	if err != nil {
		return w.report(p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return w.report(p, err)
	}
	w.buf = slices.Grow(w.buf[:0], sniffSize)[:sniffSize]
	n, err := io.ReadFull(f, w.buf)
	w.buf = w.buf[:n]
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return w.report(p, err)
	}
	w.msg = Message{Source: p, Date: fi.ModTime()}
	if n == 0 {
		// An empty file is archived as it is, as SMTP archives an empty
		// DATA: what the source holds is not dropped.
		w.msg.Folder, w.msg.Raw = folder, w.buf
		return w.emit(0)
	}
	named := strings.EqualFold(filepath.Ext(p), ".eml")
	kind, why := sniff(w.buf, n == sniffSize, named)
	for errors.Is(why, errUndecided) && len(w.buf) < maxSniffSize {
		// Read on: the header is longer than what was read.
		more := min(2*len(w.buf), maxSniffSize)
		w.buf = slices.Grow(w.buf, more-len(w.buf))[:more]
		m, err := io.ReadFull(f, w.buf[n:])
		n += m
		w.buf = w.buf[:n]
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return w.report(p, err)
		}
		kind, why = sniff(w.buf, n == more, named)
	}
	if errors.Is(why, errUndecided) {
		why = fmt.Errorf("%w: no message header field in the first %d bytes", ErrNotMail, n)
	}
	switch kind {
	case kindMbox:
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return w.report(p, err)
		}
		return w.mboxFile(f, p, mboxFolder)
	case kindMessage:
		w.msg.Folder = folder
		if w.fn == nil {
			return w.emit(int(fi.Size()))
		}
		if w.buf, err = readAll(f, w.buf, fi.Size()); err != nil {
			return w.report(p, err)
		}
		w.msg.Raw = w.buf
		if d, ok := headerDate(w.buf); ok {
			w.msg.Date = d
		}
		return w.emit(len(w.buf))
	}
	return w.report(p, why)
}

// mboxFile reads or counts the messages of an mbox file.
func (w *walker) mboxFile(f *os.File, p, folder string) error {
	if w.mbox == nil {
		w.mbox = NewMboxReader(f)
	} else {
		w.mbox.reset(f)
	}
	for n := 1; ; n++ {
		size, fromLine, err := w.mbox.read(w.fn != nil)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return w.report(p+"#"+strconv.Itoa(n), err)
		}
		_, date, _ := ParseFromLine(fromLine)
		w.msg = Message{Folder: folder, Source: p, Date: date}
		if w.fn != nil {
			w.msg.Raw = w.mbox.buf
			w.msg.Source = p + "#" + strconv.Itoa(n)
			if d, ok := headerDate(w.msg.Raw); ok && date.IsZero() {
				w.msg.Date = d
			}
		}
		if err := w.emit(size); err != nil {
			return err
		}
	}
}

// readAll appends what is left of r to buf like io.ReadAll, growing buf
// once to the expected size.
func readAll(r io.Reader, buf []byte, size int64) ([]byte, error) {
	// One spare byte lets the final read see EOF without growing.
	if need := int(size) - len(buf) + 1; need > 0 {
		buf = slices.Grow(buf, need)
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, 4096)
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}
