package tests

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/mailvault/mailvault/mailgen"
)

// ext4's shutdown ioctl (EXT4_IOC_SHUTDOWN, as xfstests' godown uses it)
// with NOLOGFLUSH stops the filesystem at once: whatever was not flushed to
// the device, file data and journal alike, is lost, as in a power cut.
const (
	ext4IocShutdown      = 0x8004587D
	ext4ShutdownNoFlush  = 2
	powerLossImageBytes  = 1 << 30
	powerLossMessages    = 3000
	powerLossCutAfterAck = 700
)

// TestPowerLossDuringImport archives onto a real ext4 filesystem on a loop
// device and cuts its power in the middle of an import: everything the
// server had not flushed is lost. After remounting (journal recovery) and
// a restart, every message the server acknowledged is there byte for byte
// and verify is clean. Needs root (loop devices, mount).
func TestPowerLossDuringImport(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("loop devices and mounts need root")
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not installed")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, powerLossImageBytes); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v %s", err, out)
	}
	mnt := t.TempDir()
	mount := func() {
		if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a loop device here: %v %s", err, out)
		}
	}
	mounted := true
	mount()
	t.Cleanup(func() {
		if mounted {
			exec.Command("umount", mnt).Run()
		}
	})

	in := newInstance(t)
	in.dataDir = filepath.Join(mnt, "data")
	for i, e := range in.env {
		if strings.HasPrefix(e, "MAILVAULT_DATA_DIR=") {
			in.env[i] = "MAILVAULT_DATA_DIR=" + in.dataDir
		}
	}
	in.start()
	in.mustCLI("tenant", "create", "acme", "-domain", "acme.example")
	in.mustCLI("user", "add", "-tenant", "acme", "alice@acme.example", "-password", "a-long-password")
	g := mailgen.New(6, []string{"acme.example"}, 10)
	g.AvgSize = 20 << 10
	msgs := make([][]byte, powerLossMessages)
	for i := range msgs {
		msgs[i] = g.Next().Raw
	}
	// The server's writes fail once the power is cut: the stream ends.
	acked, _ := in.importStream("acme", "alice@acme.example", msgs, func(n int) {
		if n == powerLossCutAfterAck {
			cutPower(t, mnt)
			in.kill()
		}
	})
	in.kill()
	if len(acked) < powerLossCutAfterAck || len(acked) == len(msgs) {
		t.Fatalf("%d acknowledged; the power cut should have come in the middle", len(acked))
	}
	t.Logf("power cut after %d acknowledged messages", len(acked))
	if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
		t.Fatalf("umount after the power cut: %v %s", err, out)
	}
	mounted = false
	mount()
	mounted = true

	in.start()
	out := in.mustCLI("verify", "-tenant", "acme")
	if !strings.Contains(out, "verify: clean") {
		t.Fatalf("verify after the power cut:\n%s", out)
	}
	in.stop()
	p := openData(t, in.dataDir)
	defer p.Close()
	tn, err := p.Tenant(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for n, r := range acked {
		raw, err := tn.RawMessage(context.Background(), r.MID)
		if err != nil {
			t.Fatalf("acknowledged message %d (mid %d) lost: %v", n, r.MID, err)
		}
		if !bytes.Equal(raw, msgs[n-1]) {
			t.Fatalf("acknowledged message %d (mid %d) altered", n, r.MID)
		}
	}
	if st := tn.Stats(); st.Messages < len(acked) {
		t.Fatalf("%d messages present, %d were acknowledged", st.Messages, len(acked))
	}
}

func cutPower(t *testing.T, mnt string) {
	t.Helper()
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.IoctlSetPointerInt(fd, ext4IocShutdown, ext4ShutdownNoFlush); err != nil {
		t.Skipf("ext4 shutdown ioctl: %v", err)
	}
}
