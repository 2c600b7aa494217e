package compress

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// SplitStream returns the stanzas (top-level message, presence and iq
// elements, exactly as they appear) of one direction of a raw S2S stream,
// from `<stream:stream` on, as a gateway's capture records it. Other
// top-level elements (stream features, dialback, TLS negotiation) are
// skipped. A capture that ends in the middle of a stanza (the connection was
// cut) yields the stanzas before it; an error is returned only when the
// data is not an XML stream at all.
func SplitStream(data []byte) ([][]byte, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var out [][]byte
	depth := 0
	start := int64(0)
	keep := false
	sawStream := false
	for {
		off := d.InputOffset()
		tok, err := d.RawToken()
		if err != nil {
			if err == io.EOF || sawStream {
				return out, nil
			}
			return nil, fmt.Errorf("compress: capture: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				sawStream = true
			case 2:
				start = off
				keep = t.Name.Space == "" && (t.Name.Local == "message" || t.Name.Local == "presence" || t.Name.Local == "iq")
			}
		case xml.EndElement:
			if depth == 2 && keep {
				out = append(out, bytes.Clone(data[start:d.InputOffset()]))
			}
			depth--
			if depth == 0 {
				return out, nil
			}
		}
	}
}

// ReadCapture reads a capture file (gzip-compressed if its name ends in
// .gz) and returns its stanzas.
func ReadCapture(path string) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("compress: %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<30))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("compress: %s: %w", path, err)
	}
	st, err := SplitStream(data)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return st, nil
}

// Kind names a stanza's top-level element ("message", "presence", "iq",
// or "other").
func Kind(st []byte) string {
	for _, k := range [...]string{"message", "presence", "iq"} {
		if len(st) > len(k)+1 && st[0] == '<' && string(st[1:1+len(k)]) == k {
			if c := st[1+len(k)]; c == ' ' || c == '>' || c == '/' || c == '\t' || c == '\n' || c == '\r' {
				return k
			}
		}
	}
	return "other"
}
