package mailfile

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"time"
)

const (
	// mboxBufSize bounds the bytes the reader buffers per line; longer lines
	// are read in pieces, so any line length works.
	mboxBufSize = 64 << 10
	// maxFromLine is the longest line taken as a From_ separator. Real ones
	// are below 200 bytes; the limit keeps the decision independent of how a
	// line happens to fall into the buffer.
	maxFromLine = 4096
)

const utf8BOM = "\xef\xbb\xbf"

// MboxReader reads the messages of an mbox stream one at a time, never
// holding more than the current message in memory.
//
// A line starting with "From " separates messages when it is the first line
// of the stream, or when it follows an empty line and looks like a From_
// line (see ParseFromLine). An unescaped "From " line inside a body ("From my
// point of view ...") therefore stays in its message. Content-Length headers
// (mboxcl, mboxcl2) are ignored: those files are split by separators too.
//
// The reader assumes mboxrd quoting: of every line matching ^>+"From " one
// '>' is removed. For mboxrd this restores the original exactly. mboxo is
// ambiguous: it quotes "From " but not ">From ", so an original ">From "
// line comes back as "From ". mboxcl2 quotes nothing; set KeepQuotes for it.
//
// The empty line before a separator, and at the end of the stream, belongs
// to the mbox format and is removed; everything else is returned as stored,
// CRLF or LF alike. A UTF-8 byte order mark at the start is skipped, a last
// line without newline is kept as is.
type MboxReader struct {
	// KeepQuotes returns ">From " lines unchanged instead of unquoting them.
	KeepQuotes bool

	br      *bufio.Reader
	buf     []byte // current message, reused
	next    string // From_ line that opens the next message
	started bool
	done    bool  // end of stream reached
	err     error // sticky
}

// NewMboxReader returns a reader for the mbox stream r.
func NewMboxReader(r io.Reader) *MboxReader {
	return &MboxReader{br: bufio.NewReaderSize(r, mboxBufSize)}
}

// reset makes the reader read a new stream, keeping its buffers.
func (r *MboxReader) reset(src io.Reader) {
	r.br.Reset(src)
	*r = MboxReader{KeepQuotes: r.KeepQuotes, br: r.br, buf: r.buf[:0]}
}

// Next returns the next message and the From_ line (without line ending)
// that preceded it. Data before the first From_ line, unless it is only
// empty lines, is returned as a message with an empty fromLine. Next returns
// io.EOF after the last message. The returned bytes are only valid until the
// next call; copy them to keep them.
func (r *MboxReader) Next() (raw []byte, fromLine string, err error) {
	size, fromLine, err := r.read(true)
	if err != nil {
		return nil, "", err
	}
	return r.buf[:size], fromLine, nil
}

// read reads the next message into r.buf when keep is set, and returns its
// size in either case, so that counting shares every rule with reading.
func (r *MboxReader) read(keep bool) (size int, fromLine string, err error) {
	for {
		if r.err != nil {
			return 0, "", r.err
		}
		if r.done {
			r.err = io.EOF
			return 0, "", io.EOF
		}
		leading := !r.started
		if leading {
			r.started = true
			if b, _ := r.br.Peek(len(utf8BOM)); string(b) == utf8BOM {
				r.br.Discard(len(utf8BOM))
			}
		}
		fromLine = r.next
		size, onlyBlank, err := r.scan(keep, leading)
		if err != nil {
			r.err = fmt.Errorf("read mbox: %w", err)
			return 0, "", r.err
		}
		if leading && onlyBlank {
			// Nothing (or only empty lines) before the first separator.
			continue
		}
		return size, fromLine, nil
	}
}

// scan reads lines up to the next separator, which it stores in r.next, or
// the end of the stream. At the start of the stream (leading) the first line
// is a separator whenever it starts with "From ", as nothing can precede it.
func (r *MboxReader) scan(keep, leading bool) (size int, onlyBlank bool, err error) {
	r.buf = r.buf[:0]
	onlyBlank = true
	prevBlank := leading // whether the last complete line was empty
	blankLen := 0        // length of that empty line, 1 or 2
	lineStart := true    // whether the next chunk starts a line
	lineStartPos := 0    // size when the current line started
	quote := quoteNone   // state of the ^>+"From " match for the current line
	for {
		chunk, rerr := r.br.ReadSlice('\n')
		if rerr != nil && rerr != bufio.ErrBufferFull && rerr != io.EOF {
			return 0, false, rerr
		}
		complete := rerr != bufio.ErrBufferFull
		if len(chunk) > 0 {
			data := chunk
			if lineStart {
				if prevBlank && complete && len(chunk) <= maxFromLine && bytes.HasPrefix(chunk, []byte("From ")) {
					line := string(trimEOL(chunk))
					if leading && size == 0 || isFromLine(line) {
						r.next = line
						if size > 0 {
							size -= blankLen // the empty line before it
						}
						r.buf = r.buf[:min(len(r.buf), size)]
						return size, onlyBlank, nil
					}
				}
				lineStartPos = size
				quote = quoteNone
				if chunk[0] == '>' && !r.KeepQuotes {
					quote = quoteGT
				}
			}
			if quote != quoteNone {
				var unquote bool
				quote, unquote = matchQuoted(quote, chunk)
				if unquote {
					// Drop the line's first '>': still in this chunk, or
					// already stored when the '>' run spanned chunks.
					if lineStart {
						data = chunk[1:]
					} else {
						if keep {
							r.buf = append(r.buf[:lineStartPos], r.buf[lineStartPos+1:]...)
						}
						size--
					}
				}
			}
			if keep {
				r.buf = append(r.buf, data...)
			}
			size += len(data)
			blank := lineStart && complete && isBlankLine(chunk)
			if blank {
				blankLen = len(chunk)
			} else {
				onlyBlank = false
			}
			prevBlank = blank
			lineStart = rerr == nil
		}
		if rerr == io.EOF {
			r.done = true
			if prevBlank && size > 0 {
				size -= blankLen
			}
			r.buf = r.buf[:min(len(r.buf), size)]
			return size, onlyBlank, nil
		}
	}
}

// States of matching ^>+"From " across the chunks of one line.
const (
	quoteNone = 0 // decided: not a quoted From line
	quoteGT   = 1 // seen only '>' so far
	// quoteGT+k: seen the '>' run and the first k bytes of "From ".
)

// matchQuoted advances the match over chunk. It returns the new state and
// whether the line was just recognised as a quoted From line.
func matchQuoted(state int, chunk []byte) (int, bool) {
	const from = "From "
	for _, c := range chunk {
		k := state - quoteGT
		switch {
		case k == 0 && c == '>':
		case c == from[k]:
			state++
			if state-quoteGT == len(from) {
				return quoteNone, true
			}
		default:
			return quoteNone, false
		}
	}
	return state, false
}

func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r"))
}

// WriteMboxrd appends raw to the mbox stream w as one mboxrd message: a
// From_ line with sender and date, raw with every line matching ^>*"From "
// quoted by one more '>', and the empty separator line. Line endings follow
// raw's first line (CRLF or LF). An mbox message always ends with a line
// ending, so one is appended when raw lacks it; reading returns raw with it.
// Whitespace and control characters in sender become '_', an empty sender
// is written as MAILER-DAEMON, and date is written in UTC, clamped to years
// 1 to 9999. w should be buffered.
func WriteMboxrd(w io.Writer, raw []byte, sender string, date time.Time) error {
	eol := []byte("\n")
	if i := bytes.IndexByte(raw, '\n'); i > 0 && raw[i-1] == '\r' {
		eol = []byte("\r\n")
	}
	var lineBuf [128]byte
	line := appendFromLine(lineBuf[:0], sender, date)
	line = append(line, eol...)
	if _, err := w.Write(line); err != nil {
		return fmt.Errorf("write mbox: %w", err)
	}
	// Find "From " and walk back over '>' to see whether it starts a line;
	// searching for the pattern is much faster than visiting every line.
	last := 0
	for pos := 0; pos < len(raw); {
		i := bytes.Index(raw[pos:], []byte("From "))
		if i < 0 {
			break
		}
		i += pos
		start := i
		for start > 0 && raw[start-1] == '>' {
			start--
		}
		if start == 0 || raw[start-1] == '\n' {
			if _, err := w.Write(raw[last:start]); err != nil {
				return fmt.Errorf("write mbox: %w", err)
			}
			if _, err := w.Write([]byte(">")); err != nil {
				return fmt.Errorf("write mbox: %w", err)
			}
			last = start
		}
		pos = i + len("From ")
	}
	if _, err := w.Write(raw[last:]); err != nil {
		return fmt.Errorf("write mbox: %w", err)
	}
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		if _, err := w.Write(eol); err != nil {
			return fmt.Errorf("write mbox: %w", err)
		}
	}
	if _, err := w.Write(eol); err != nil {
		return fmt.Errorf("write mbox: %w", err)
	}
	return nil
}
