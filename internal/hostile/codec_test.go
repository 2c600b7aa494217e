package hostile

import (
	"fmt"
	"strings"
)

// codecCases are issue 10's first class: stanzas a local server may send
// that sit at the codec's edges (names, namespaces and values longer than
// its tables hold, many distinct unknown names, text whose escaped form is
// longer than its decoded one), all within the rig's max_text_size of
// 8192 (beyond it they are bounced: xmlCases). The S2S edge accepts each; the codec must
// carry it so that the peer's decoder takes it (raw if need be), or refuse
// it at ingress with a bounce, never frame something the peer refuses,
// which would wedge the link for every user. Each must be delivered once,
// and the background flow, checked after every case, shows the link still
// moves.
func codecCases() []hcase {
	in := func(id, inner string) string {
		return "<message from='alice@a.test/x' to='bob@b.test' id='" + id + "' type='chat'><body>x</body>" + inner + "</message>"
	}
	name := func(n int) string { return "X" + strings.Repeat("n", n-1) }
	var many strings.Builder
	for i := range 300 {
		fmt.Fprintf(&many, "<u%03d xmlns='urn:t:%d'/>", i, i)
	}
	crossing := func(caseName, id, input string) hcase {
		return hcase{name: caseName, want: "delivered once, link still moving",
			run: func(r *rig) (string, error) { return r.delivered(input, id) }}
	}
	return []hcase{
		crossing("codec-element-name-300", "h-c1", in("h-c1", "<"+name(300)+" xmlns='urn:t'/>")),
		crossing("codec-element-name-4000", "h-c2", in("h-c2", "<"+name(4000)+" xmlns='urn:t'/>")),
		crossing("codec-attribute-name-300", "h-c3", in("h-c3", "<x xmlns='urn:t' "+name(300)+"='v'/>")),
		crossing("codec-namespace-300", "h-c4", in("h-c4", "<x xmlns='urn:"+strings.Repeat("s", 300)+"'/>")),
		crossing("codec-prefixed-name-300", "h-c5", in("h-c5", "<p:"+name(300)+" xmlns:p='urn:t'/>")),
		crossing("codec-300-unknown-names", "h-c6", in("h-c6", many.String())),
		crossing("codec-escaped-text", "h-c7", in("h-c7", "<x xmlns='urn:t'>"+strings.Repeat("&gt;&lt;&amp;", 600)+"</x>")),
		// Raw '>' and '"' are legal in text; canonical output escapes them,
		// so the stanza grows on the way (its template bound is on that).
		crossing("codec-text-grows-when-escaped", "h-c11", in("h-c11", "<x xmlns='urn:t'>"+strings.Repeat(">", 4000)+"</x><y xmlns='urn:t' a='"+strings.Repeat(">", 3000)+"'/>")),
		crossing("codec-attribute-value-8000", "h-c8", in("h-c8", "<x xmlns='urn:t' a='"+strings.Repeat("v", 8000)+"'/>")),
		crossing("codec-jid-resource-1000", "h-c9", "<message from='alice@a.test/"+strings.Repeat("r", 1000)+"' to='bob@b.test/"+strings.Repeat("s", 1000)+"' id='h-c9' type='chat'><body>x</body></message>"),
		crossing("codec-depth-60", "h-c10", in("h-c10", strings.Repeat("<a xmlns='urn:t'>", 60)+strings.Repeat("</a>", 60))),
	}
}
