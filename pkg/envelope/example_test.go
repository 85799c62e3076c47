package envelope_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/instant-go/instant/pkg/envelope"
)

func ExampleDecode() {
	body := []byte(`{"channel":"$users","message":"hi","event_class":"important","data":{"a":1}}`)
	env, err := envelope.Decode(body, envelope.Limits{}) // zero Limits: the defaults
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(env.Targets(), env.Message, env.EventClass, string(env.Data))

	_, err = envelope.Decode([]byte(`{"chanel":"$users","message":"hi"}`), envelope.Limits{})
	var e *envelope.Error
	if errors.As(err, &e) {
		fmt.Println(e.Code(), e.Field)
	}
	fmt.Println(err)
	fmt.Println(errors.Is(err, envelope.ErrInvalidEnvelope))
	// Output:
	// [$users] hi important {"a":1}
	// invalid_envelope chanel
	// invalid_envelope: chanel: unknown field
	// true
}

func ExampleAppendPayload() {
	body := []byte(`{"channels":["public","$users"],"message":"hi","data":{"a":1},"id":"p-7"}`)
	env, err := envelope.Decode(body, envelope.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	meta := envelope.Meta{ID: env.ID, Site: "mysite", ReceivedAt: time.UnixMilli(1795791845678)}
	var buf []byte
	for _, ch := range env.Targets() {
		buf = envelope.AppendPayload(buf[:0], envelope.ModeObject, &env, ch, meta)
		fmt.Println(string(buf))
	}
	// A broadcast copy names all channels.
	buf = envelope.AppendPayload(buf[:0], envelope.ModeObject, &env, "", meta)
	fmt.Println(string(buf))
	// Output:
	// {"id":"p-7","channel":"public","site":"mysite","message":"hi","data":{"a":1},"ts":1795791845678}
	// {"id":"p-7","channel":"$users","site":"mysite","message":"hi","data":{"a":1},"ts":1795791845678}
	// {"id":"p-7","channels":["public","$users"],"site":"mysite","message":"hi","data":{"a":1},"ts":1795791845678}
}

func ExampleAppendPayload_django() {
	body := []byte(`{"channel":"$users","message":"hi","event_class":"important","data":{"a":1}}`)
	env, err := envelope.Decode(body, envelope.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	meta := envelope.Meta{ID: "b-1", Site: "mysite", ReceivedAt: time.UnixMilli(1795791845678)}
	// The publication data is a JSON string: django-instant's client JSON.parses it.
	fmt.Println(string(envelope.AppendPayload(nil, envelope.ModeDjango, &env, "$users", meta)))
	// Output:
	// "{\"channel\":\"$users\",\"site\":\"mysite\",\"message\":\"hi\",\"data\":{\"a\":1},\"event_class\":\"important\"}"
}

func ExampleParseMode() {
	m, err := envelope.ParseMode("django")
	fmt.Println(m, err)
	_, err = envelope.ParseMode("json")
	fmt.Println(err, errors.Is(err, envelope.ErrUnknownMode))
	// Output:
	// django <nil>
	// payload mode "json": want "object" or "django" true
}
