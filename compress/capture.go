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
	st, _, _, err := splitStream(data)
	return st, err
}

// splitStream is SplitStream that also returns the 'from' and 'to' of the
// stream header (empty when it has none).
func splitStream(data []byte) (out [][]byte, from, to string, err error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	depth := 0
	start := int64(0)
	keep := false
	sawStream := false
	for {
		off := d.InputOffset()
		tok, err := d.RawToken()
		if err != nil {
			if err == io.EOF || sawStream {
				return out, from, to, nil
			}
			return nil, "", "", fmt.Errorf("compress: capture: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch depth {
			case 1:
				sawStream = true
				for _, a := range t.Attr {
					switch {
					case a.Name.Space != "":
					case a.Name.Local == "from":
						from = a.Value
					case a.Name.Local == "to":
						to = a.Value
					}
				}
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
				return out, from, to, nil
			}
		}
	}
}

// ReadCapture reads a capture file (gzip-compressed if its name ends in
// .gz) and returns its stanzas.
func ReadCapture(path string) ([][]byte, error) {
	st, _, _, err := ReadCaptureHeader(path)
	return st, err
}

// ReadCaptureHeader reads a capture file as ReadCapture does and also
// returns the 'from' and 'to' of its stream header (empty when the header
// has none). The two directions of one S2S session have them swapped:
// `isthmus bench` pairs its files by them.
func ReadCaptureHeader(path string) (stanzas [][]byte, from, to string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", "", fmt.Errorf("compress: %w", err)
	}
	defer f.Close()
	var r io.Reader = bufio.NewReader(f)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, "", "", fmt.Errorf("compress: %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, 1<<30))
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, "", "", fmt.Errorf("compress: %s: %w", path, err)
	}
	stanzas, from, to, err = splitStream(data)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w (%s)", err, path)
	}
	return stanzas, from, to, nil
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
