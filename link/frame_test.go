package link

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/isthmus-xmpp/isthmus/compress"
)

// FuzzReadFrame: a frame ReadFrame accepts is the one AppendFrame writes,
// byte for byte (a frame has one encoding), reads back the same, and a
// session takes it without panicking.
func FuzzReadFrame(f *testing.F) {
	f.Add(AppendFrame(nil, FrameHello, hello(0, 7, 0, 0, 1<<20).append(nil)))
	withDicts := hello(0, 7, 0, 0, 1<<20)
	withDicts.Dict, withDicts.Dicts = compress.DictHash{1}, []compress.DictHash{{1}, {2}}
	f.Add(AppendFrame(nil, FrameHello, withDicts.append(nil)))
	f.Add(AppendFrame(nil, FrameEpoch, appendEpoch(nil, 9, compress.DictHash{3})))
	f.Add(AppendFrame(nil, FrameAck, []byte{5}))
	f.Add(AppendFrame(AppendFrame(nil, FrameData, []byte{0, 1, 2}), FrameAckReq, nil))
	f.Add([]byte{2, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{3, 0x81, 0x00, 5}) // length 1 in two bytes: refused
	f.Fuzz(func(t *testing.T, b []byte) {
		rest := bytes.NewReader(b)
		br := bufio.NewReader(rest)
		fr, err := ReadFrame(br)
		if err != nil {
			return
		}
		read := b[:len(b)-br.Buffered()-rest.Len()]
		again := AppendFrame(nil, fr.Type, fr.Payload)
		if !bytes.Equal(again, read) {
			t.Fatalf("ReadFrame took %x, AppendFrame of what it read is %x", read, again)
		}
		fr2, err := ReadFrame(bufio.NewReader(bytes.NewReader(again)))
		if err != nil || fr2.Type != fr.Type || !bytes.Equal(fr2.Payload, fr.Payload) {
			t.Fatalf("re-read %x: %v, %x; want %x %x", again, err, fr2, fr.Type, fr.Payload)
		}
		s, _ := NewSession(SessionConfig{}, counterIDs(1))
		s.Connected(t0)
		if fr.Type == FrameHello {
			s.Receive(t0, fr)
			return
		}
		s.Receive(t0, Frame{FrameHello, hello(0, 5, 0, 0, 1<<20).append(nil)})
		s.Receive(t0, fr) // must not panic
	})
}

// A length in more bytes than it needs is refused: AppendFrame never
// writes one, and a frame has one encoding.
func TestReadFrameRefusesLongLength(t *testing.T) {
	for _, b := range [][]byte{
		{FrameAckReq, 0x80, 0x00},
		{FrameAck, 0x81, 0x00, 5},
		{FrameAck, 0x81, 0x80, 0x00, 5},
	} {
		if fr, err := ReadFrame(bufio.NewReader(bytes.NewReader(b))); !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), errLongLength.Error()) {
			t.Errorf("ReadFrame(%x) = %x, %v; want a protocol error: %v", b, fr, err, errLongLength)
		}
	}
	for _, b := range [][]byte{{FrameAckReq, 0x00}, {FrameAck, 0x01, 5}} {
		if _, err := ReadFrame(bufio.NewReader(bytes.NewReader(b))); err != nil {
			t.Errorf("ReadFrame(%x) = %v", b, err)
		}
	}
}
