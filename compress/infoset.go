package compress

import (
	"bytes"
	"cmp"
	"encoding/xml"
	"errors"
	"io"
	"slices"
)

// EqualInfoset reports whether two serialized stanzas carry the same XML
// infoset when read in a jabber:server stream: the same elements with the
// same namespaces, the same attributes (in any order) with the same values,
// and the same character data. It is the check the bench and the tests use
// on decoded stanzas, with encoding/xml, independently of the codec's own
// parser.
func EqualInfoset(a, b []byte) bool {
	ta, errA := infoset(a)
	tb, errB := infoset(b)
	if errA != nil || errB != nil {
		return false
	}
	return slices.Equal(ta, tb)
}

// infoset flattens a stanza into comparable strings.
func infoset(st []byte) ([]string, error) {
	var doc bytes.Buffer
	doc.WriteString(`<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>`)
	doc.Write(st)
	doc.WriteString(`</stream:stream>`)
	d := xml.NewDecoder(&doc)
	d.Strict = true
	var out []string
	var text []byte
	flush := func() {
		if len(text) > 0 {
			out = append(out, "T"+string(text))
			text = text[:0]
		}
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			flush()
			if len(out) < 2 {
				return nil, errors.New("empty")
			}
			return out[1 : len(out)-1], nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			flush()
			attrs := slices.Clone(t.Attr)
			slices.SortFunc(attrs, func(x, y xml.Attr) int {
				return cmp.Or(cmp.Compare(x.Name.Space, y.Name.Space), cmp.Compare(x.Name.Local, y.Name.Local))
			})
			s := "S" + t.Name.Space + "\x00" + t.Name.Local
			for _, a := range attrs {
				s += "\x00" + a.Name.Space + "\x00" + a.Name.Local + "=" + a.Value
			}
			out = append(out, s)
		case xml.EndElement:
			flush()
			out = append(out, "E")
		case xml.CharData:
			text = append(text, t...)
		case xml.Comment:
			flush()
			out = append(out, "C"+string(t))
		case xml.ProcInst:
			flush()
			out = append(out, "P"+t.Target+string(t.Inst))
		case xml.Directive:
			flush()
			out = append(out, "D"+string(t))
		}
	}
}
