package centrifugo

import "fmt"

// Command is one Centrifugo command: a publish to Channel, or, when Channels
// is set, a broadcast to all of them. Data is the publication, already
// encoded as valid JSON. IdempotencyKey, when set, makes Centrifugo apply
// the command once per channel however many times it is sent (within its
// idempotency window); senders that cannot carry it say so.
type Command struct {
	Channel        string
	Channels       []string
	Data           []byte
	IdempotencyKey string
}

// Result is what Centrifugo answered for one channel.
type Result struct {
	Channel string
	Offset  uint64
	Epoch   string
}

// Outcome is the fate of an Item: Err is nil when every command was accepted;
// then Results has one entry per channel in command order.
type Outcome struct {
	Err     *Error
	Results []Result
}

// Item is one unit of work: the commands of one envelope. They go in one
// request, in order, and Done is called exactly once with the outcome.
// Centrifugo applies the items of a channel in submission order, but the
// Done calls of two items of a channel may run in either order.
type Item struct {
	Commands []Command
	Done     func(Outcome)

	size int // encodedSize, set by Submit
}

// commandOverhead is what a command adds to a request besides its data and
// channel names: the JSON around them.
const commandOverhead = 64

// encodedSize is the item's share of a request body.
func (it *Item) encodedSize() int {
	n := 0
	for _, c := range it.Commands {
		n += c.encodedSize()
	}
	return n
}

// encodedSize is the command's share of a request body (at least: more
// when a channel name or key needs escaping).
func (c *Command) encodedSize() int {
	n := commandOverhead + len(c.Data) + len(c.Channel) + len(c.IdempotencyKey)
	for _, ch := range c.Channels {
		n += len(ch) + 3
	}
	return n
}

func (it *Item) channels(yield func(string) bool) {
	for _, c := range it.Commands {
		if c.Channels == nil {
			if !yield(c.Channel) {
				return
			}
			continue
		}
		for _, ch := range c.Channels {
			if !yield(ch) {
				return
			}
		}
	}
}

// checkReplies reports the first reply that does not answer its command:
// a publish answered by anything but a publication, a broadcast by anything
// but one response per channel, each an error or a publication. Such a reply
// does not say whether Centrifugo applied the command.
func checkReplies(cmds []Command, replies []Reply) error {
	for i, c := range cmds {
		r := replies[i]
		switch {
		case r.Err != nil:
		case c.Channels == nil && r.Kind != ReplyPublished:
			return fmt.Errorf("reply %d to a publish to %q names no publication", i, c.Channel)
		case c.Channels != nil && (r.Kind != ReplyBroadcast || len(r.PerChannel) != len(c.Channels)):
			return fmt.Errorf("reply %d to a broadcast to %d channels has %d responses", i, len(c.Channels), len(r.PerChannel))
		case c.Channels != nil:
			for j, pr := range r.PerChannel {
				if pr.Err == nil && pr.Kind != ReplyPublished {
					return fmt.Errorf("reply %d to a broadcast: the response for %q names no publication", i, c.Channels[j])
				}
			}
		}
	}
	return nil
}

// outcome turns the replies to an item's commands into its Outcome: the
// first error rejects the whole item.
func outcome(it *Item, replies []Reply) Outcome {
	n := 0
	for _, c := range it.Commands {
		n += max(1, len(c.Channels))
	}
	o := Outcome{Results: make([]Result, 0, n)}
	for k, c := range it.Commands {
		r := replies[k]
		if r.Err != nil {
			return Outcome{Err: &Error{code: CodeUpstreamRejected, msg: r.Err.Error()}}
		}
		if c.Channels == nil {
			o.Results = append(o.Results, Result{Channel: c.Channel, Offset: r.Offset, Epoch: r.Epoch})
			continue
		}
		for j, ch := range c.Channels {
			res := Result{Channel: ch}
			if j < len(r.PerChannel) {
				pr := r.PerChannel[j]
				if pr.Err != nil {
					return Outcome{Err: &Error{code: CodeUpstreamRejected, msg: fmt.Sprintf("centrifugo error %d on %s: %s", pr.Err.Code, ch, pr.Err.Message)}}
				}
				res.Offset, res.Epoch = pr.Offset, pr.Epoch
			}
			o.Results = append(o.Results, res)
		}
	}
	return o
}
