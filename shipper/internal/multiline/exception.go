package multiline

import "bytes"

// ExceptionClass finds the top-level exception of a multi-line event: the
// line just before the first "at ..." frame, or failing that the second
// line, when it starts with a qualified Java class name followed by ':' or
// the end of the line. It returns nil when there is none.
func ExceptionClass(ev []byte) []byte {
	first := bytes.IndexByte(ev, '\n')
	if first < 0 {
		return nil
	}
	prevStart, prevEnd := -1, -1
	p := first + 1
	for lines := 0; p < len(ev) && lines < 64; lines++ {
		e := bytes.IndexByte(ev[p:], '\n')
		if e < 0 {
			e = len(ev)
		} else {
			e += p
		}
		l := ev[p:e]
		if isFrame(l) {
			if prevStart >= 0 {
				if c := classAt(ev[prevStart:prevEnd]); c != nil {
					return c
				}
			}
			break
		}
		prevStart, prevEnd = p, e
		p = e + 1
	}
	e := bytes.IndexByte(ev[first+1:], '\n')
	if e < 0 {
		return classAt(ev[first+1:])
	}
	return classAt(ev[first+1 : first+1+e])
}

func isFrame(l []byte) bool {
	i := 0
	for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
		i++
	}
	return i > 0 && bytes.HasPrefix(l[i:], []byte("at "))
}

// classAt returns the qualified class name that l starts with ("Caused by: "
// and "Exception in thread "x" " prefixes removed) if it looks like a
// Throwable: a dotted name whose last part starts upper-case, followed by
// ':' or the end of the line.
func classAt(l []byte) []byte {
	l = bytes.TrimLeft(l, " \t")
	l = bytes.TrimPrefix(l, []byte("Caused by: "))
	if bytes.HasPrefix(l, []byte("Exception in thread \"")) {
		if i := bytes.Index(l[21:], []byte("\" ")); i >= 0 {
			l = l[21+i+2:]
		}
	}
	end := 0
	dot := -1
	for end < len(l) {
		c := l[end]
		if c == '.' {
			dot = end
		} else if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || isDigit(c) || c == '_' || c == '$') {
			break
		}
		end++
	}
	if dot <= 0 || dot == end-1 || end > 200 {
		return nil
	}
	if c := l[dot+1]; c < 'A' || c > 'Z' {
		return nil
	}
	if end < len(l) && l[end] != ':' && l[end] != '\r' {
		return nil
	}
	return l[:end]
}
