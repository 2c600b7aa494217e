package gateway

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/isthmus-xmpp/isthmus/compress"
)

func TestCaptureRecordsWhatTheLocalServerSends(t *testing.T) {
	dir := t.TempDir()
	cp, err := newCapturer(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cl := cp.listener(ln)
	stream := "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='b.test' from='a.test'>" +
		"<presence from='u@a.test/r' to='v@b.test'/><message from='u@a.test/r' to='v@b.test'><body>hi</body></message>"
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		c.Write([]byte(stream))
		c.Close()
	}()
	c, err := cl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "*-in-*.xml"))
	if len(files) != 1 {
		t.Fatalf("capture files %v", files)
	}
	rec, _ := os.ReadFile(files[0])
	if !bytes.Equal(rec, got) || string(rec) != stream {
		t.Fatalf("recorded %q", rec)
	}
	st, err := compress.ReadCapture(files[0])
	if err != nil || len(st) != 2 {
		t.Fatalf("ReadCapture: %d stanzas, %v", len(st), err)
	}
}
