package yamlfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// jsonRoot parses data as JSON into the same node tree as YAML, with lines.
func jsonRoot(data []byte) (*yaml.Node, *Error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := jsonParser{dec: dec, data: data}
	root, err := p.value()
	if err == nil {
		if _, err = dec.Token(); err == io.EOF {
			return root, nil
		} else if err == nil {
			err = errors.New("unexpected data after the top-level value")
		}
	}
	return nil, p.fail(err)
}

type jsonParser struct {
	dec  *json.Decoder
	data []byte
}

// line returns the line of the next token.
func (p *jsonParser) line() int {
	off := int(p.dec.InputOffset())
	for off < len(p.data) && strings.IndexByte(" \t\r\n:,", p.data[off]) >= 0 {
		off++
	}
	return 1 + bytes.Count(p.data[:min(off, len(p.data))], []byte("\n"))
}

func (p *jsonParser) fail(err error) *Error {
	line := p.line()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line = 1 + bytes.Count(p.data[:min(int(se.Offset), len(p.data))], []byte("\n"))
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = io.ErrUnexpectedEOF
	}
	return &Error{Line: line, Entry: -1, Msg: "invalid JSON: " + err.Error(), Err: err}
}

func (p *jsonParser) value() (*yaml.Node, error) {
	line := p.line()
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Line: line}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
			for p.dec.More() {
				k, err := p.value()
				if err != nil {
					return nil, err
				}
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, k, v)
			}
		case '[':
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
			for p.dec.More() {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
		default:
			return nil, fmt.Errorf("unexpected %q", t)
		}
		if _, err := p.dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	case string:
		n.Tag, n.Value = "!!str", t
	case json.Number:
		n.Tag, n.Value = "!!int", t.String()
		if strings.ContainsAny(n.Value, ".eE") {
			n.Tag = "!!float"
		}
	case bool:
		n.Tag, n.Value = "!!bool", strconv.FormatBool(t)
	case nil:
		n.Tag, n.Value = "!!null", "null"
	}
	return n, nil
}
