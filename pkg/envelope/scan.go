package envelope

import (
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner is a validating JSON lexer over one body. It accepts exactly what
// encoding/json accepts (RFC 8259, nesting up to 10000), except that strings
// must be valid UTF-8. Its methods return a non-nil *Error (code
// CodeInvalidJSON) on the first syntax error.
type scanner struct {
	b   []byte
	pos int
}

func (s *scanner) syntaxError() *Error {
	if s.pos >= len(s.b) {
		return &Error{code: CodeInvalidJSON, Reason: "unexpected end of input"}
	}
	return &Error{code: CodeInvalidJSON, Reason: "invalid character " + quoteChar(s.b[s.pos]) +
		" at offset " + strconv.Itoa(s.pos)}
}

func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	if c < 0x20 || c >= utf8.RuneSelf {
		return `'\x` + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&0xF, 16) + `'`
	}
	return "'" + string(rune(c)) + "'"
}

func (s *scanner) skipWS() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek returns the byte at the current position, 0 at the end.
func (s *scanner) peek() byte {
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

// expect consumes c or fails.
func (s *scanner) expect(c byte) *Error {
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return nil
	}
	return s.syntaxError()
}

// readString reads the string starting at the current position (a '"') and
// returns its raw content between the quotes, and whether it holds an escape.
func (s *scanner) readString() (raw []byte, esc bool, err *Error) {
	if err := s.expect('"'); err != nil {
		return nil, false, err
	}
	start := s.pos
	b := s.b
	i := s.pos
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return b[start:i], esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				s.pos = len(b)
				return nil, false, s.syntaxError()
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) || !isHex(b[k]) {
						s.pos = k
						return nil, false, s.syntaxError()
					}
				}
				i += 6
			default:
				s.pos = i + 1
				return nil, false, s.syntaxError()
			}
		case c < 0x20:
			s.pos = i
			return nil, false, s.syntaxError()
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				s.pos = i
				return nil, false, &Error{code: CodeInvalidJSON,
					Reason: "invalid UTF-8 in string at offset " + strconv.Itoa(i)}
			}
			i += size
		}
	}
	s.pos = len(b)
	return nil, false, s.syntaxError()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// readNumber reads the number at the current position and returns its text.
func (s *scanner) readNumber() ([]byte, *Error) {
	b := s.b
	start := s.pos
	i := s.pos
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		s.pos = i
		return nil, s.syntaxError()
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.pos = i
			return nil, s.syntaxError()
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.pos = i
			return nil, s.syntaxError()
		}
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	s.pos = i
	return b[start:i], nil
}

// readLiteral consumes lit (true, false or null).
func (s *scanner) readLiteral(lit string) *Error {
	for k := 0; k < len(lit); k++ {
		if s.pos >= len(s.b) || s.b[s.pos] != lit[k] {
			return s.syntaxError()
		}
		s.pos++
	}
	return nil
}

// skipValue validates and skips the value at the current position. depth is
// the number of containers around it. It returns the deepest container
// nesting reached (depth for a scalar).
func (s *scanner) skipValue(depth int) (int, *Error) {
	switch c := s.peek(); {
	case c == '{':
		return s.skipContainer(depth+1, '}')
	case c == '[':
		return s.skipContainer(depth+1, ']')
	case c == '"':
		_, _, err := s.readString()
		return depth, err
	case c == 't':
		return depth, s.readLiteral("true")
	case c == 'f':
		return depth, s.readLiteral("false")
	case c == 'n':
		return depth, s.readLiteral("null")
	case c == '-' || '0' <= c && c <= '9':
		_, err := s.readNumber()
		return depth, err
	default:
		return depth, s.syntaxError()
	}
}

// skipContainer skips an object (end '}') or array (end ']') at the current
// position, which is at nesting level depth.
func (s *scanner) skipContainer(depth int, end byte) (int, *Error) {
	if depth > maxNesting {
		return depth, &Error{code: CodeInvalidJSON, Reason: "exceeded max nesting depth " +
			strconv.Itoa(maxNesting) + " at offset " + strconv.Itoa(s.pos)}
	}
	s.pos++ // '{' or '['
	deepest := depth
	s.skipWS()
	if s.peek() == end {
		s.pos++
		return deepest, nil
	}
	for {
		if end == '}' {
			if _, _, err := s.readString(); err != nil {
				return deepest, err
			}
			s.skipWS()
			if err := s.expect(':'); err != nil {
				return deepest, err
			}
			s.skipWS()
		}
		d, err := s.skipValue(depth)
		if err != nil {
			return deepest, err
		}
		deepest = max(deepest, d)
		s.skipWS()
		switch s.peek() {
		case ',':
			s.pos++
			s.skipWS()
		case end:
			s.pos++
			return deepest, nil
		default:
			return deepest, s.syntaxError()
		}
	}
}

// unquote returns the string value of the raw content of a string read by
// readString. It decodes escapes exactly as encoding/json does: an invalid
// or unpaired surrogate escape becomes U+FFFD.
func unquote(raw []byte, esc bool) string {
	if !esc {
		return string(raw)
	}
	return string(appendUnquoted(make([]byte, 0, len(raw)), raw))
}

func appendUnquoted(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := getu4(raw[i:])
			i += 6
			if utf16.IsSurrogate(r) {
				if r2 := getu4(raw[i:]); r2 >= 0 {
					if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
						i += 6
						dst = utf8.AppendRune(dst, dec)
						continue
					}
				}
				r = unicode.ReplacementChar
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// getu4 decodes \uXXXX at the start of b, or returns -1.
func getu4(b []byte) rune {
	if len(b) < 6 || b[0] != '\\' || b[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range b[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}
