package centrifugo

// dispatcher is the state of the Forwarder's dispatch goroutine, which alone
// touches it.
type dispatcher struct {
	f        *Forwarder
	waiting  []*Item
	busy     map[string]struct{} // channels with a request in flight
	held     map[string]struct{} // channels of waiting[:scanned], all blocked
	scanned  int                 // waiting[:scanned] cannot go until busy changes
	slots    int                 // free request slots
	finished chan batchDone
	in       chan *Item    // nil once closed and drained
	closed   chan struct{} // nil once Close timed out
	aborting bool
}

type batchDone struct {
	channels []string
}

func (f *Forwarder) dispatch() {
	defer func() {
		f.outcomes.Wait()
		close(f.done)
	}()
	d := &dispatcher{
		f:        f,
		busy:     map[string]struct{}{},
		held:     map[string]struct{}{},
		slots:    f.cfg.Concurrency,
		finished: make(chan batchDone, f.cfg.Concurrency),
		in:       f.in,
		closed:   f.closed,
	}
	for d.in != nil || len(d.waiting) > 0 || d.slots < f.cfg.Concurrency {
		recv := d.in
		if len(d.waiting) >= f.cfg.QueueSize {
			recv = nil // full: Submit blocks until requests finish
		}
		select {
		case it, ok := <-recv:
			d.receive(it, ok)
		case b := <-d.finished:
			d.slots++
			for _, ch := range b.channels {
				delete(d.busy, ch)
			}
			d.rescan()
		case <-d.closed:
			d.aborting, d.closed = true, nil
		}
		if d.aborting {
			d.failWaiting()
		}
		if d.slots > 0 && len(d.waiting) > d.scanned {
			d.launch()
		}
		f.obs.Queue(len(d.waiting)+len(d.in), f.cfg.Concurrency-d.slots)
	}
}

// receive queues it, and what else is queued without blocking, so a burst
// is batched. ok false means Submit's channel is closed.
func (d *dispatcher) receive(it *Item, ok bool) {
	if !ok {
		d.in = nil
		return
	}
	d.waiting = append(d.waiting, it)
	for len(d.waiting) < d.f.cfg.QueueSize {
		select {
		case it, ok := <-d.in:
			if !ok {
				d.in = nil
				return
			}
			d.waiting = append(d.waiting, it)
		default:
			return
		}
	}
}

// rescan forgets which waiting items are known to be blocked.
func (d *dispatcher) rescan() {
	d.scanned, d.held = 0, map[string]struct{}{}
}

// failWaiting fails every item not yet sent, once Close timed out.
func (d *dispatcher) failWaiting() {
	if d.in != nil {
		for it := range d.in { // closed by Close before f.closed
			d.waiting = append(d.waiting, it)
		}
		d.in = nil
	}
	for _, it := range d.waiting {
		it.Done(Outcome{Err: errShuttingDown})
	}
	d.waiting, d.scanned = d.waiting[:0], 0
}

// launch starts a request for each batch take makes.
func (d *dispatcher) launch() {
	f := d.f
	batches, chans, rest := f.take(d.waiting, d.busy, d.held, d.scanned, d.slots)
	if len(batches) == 0 {
		d.scanned = len(d.waiting)
		return
	}
	d.waiting = rest
	d.rescan()
	finished := d.finished
	for i, batch := range batches {
		d.slots--
		for _, ch := range chans[i] {
			d.busy[ch] = struct{}{}
		}
		f.outcomes.Add(1)
		go func() {
			defer f.outcomes.Done()
			// Centrifugo has applied the request once send returns: free
			// its channels before the outcomes are handled.
			f.send(batch, func() { finished <- batchDone{channels: chans[i]} })
		}()
	}
}

// take picks, in order, the items that can go in the next requests, as up
// to k batches of at most MaxBatch commands and MaxRequestBytes bytes. A
// channel belongs to one batch only, so batches can be in flight at once
// without reordering a channel; items touching a busy channel wait, and so
// does every later item of a channel that has an item waiting.
// waiting[:start] are known to be blocked and their channels are in held,
// which gains the channels of the items left behind. It returns the batches,
// the channels of each, and the items left waiting, in order.
func (f *Forwarder) take(waiting []*Item, busy, held map[string]struct{}, start, k int) (batches [][]*Item, chans [][]string, rest []*Item) {
	p := &plan{cfg: &f.cfg, k: k, owner: map[string]int{}}
	rest = make([]*Item, start, len(waiting))
	copy(rest, waiting[:start])
	for i := start; i < len(waiting); i++ {
		it := waiting[i]
		if p.full == k {
			rest = append(rest, waiting[i:]...)
			break
		}
		target, ok := p.place(it, busy, held)
		if !ok {
			for ch := range it.channels {
				held[ch] = struct{}{}
			}
			rest = append(rest, it)
			continue
		}
		p.add(target, it)
	}
	// A batch opened for an item that then did not fit stays empty: drop it.
	out, outChans := p.batches[:0], p.chans[:0]
	for b := range p.batches {
		if len(p.batches[b]) > 0 {
			out, outChans = append(out, p.batches[b]), append(outChans, p.chans[b])
		}
	}
	return out, outChans, rest
}

// plan is the batches take is filling.
type plan struct {
	cfg     *Config
	k       int
	batches [][]*Item
	chans   [][]string
	cmds    []int          // commands in each batch
	bytes   []int          // encoded size of each batch
	owner   map[string]int // channel -> its batch
	full    int            // batches at MaxBatch or MaxRequestBytes
}

// place finds the batch it can join: the one that owns its channels, else
// a new one, else the smallest. ok is false when it must wait: a channel of
// it is busy or held, its channels are in two batches, or it does not fit.
func (p *plan) place(it *Item, busy, held map[string]struct{}) (target int, ok bool) {
	target = -1
	for ch := range it.channels {
		if _, ok := busy[ch]; ok {
			return -1, false
		}
		if _, ok := held[ch]; ok {
			return -1, false
		}
		if b, ok := p.owner[ch]; ok {
			if target >= 0 && target != b {
				return -1, false // its channels are split over two batches
			}
			target = b
		}
	}
	if target < 0 {
		if len(p.batches) < p.k {
			p.batches, p.chans = append(p.batches, nil), append(p.chans, nil)
			p.cmds, p.bytes = append(p.cmds, 0), append(p.bytes, 0)
			target = len(p.batches) - 1
		} else {
			target = 0
			for b := range p.cmds {
				if p.cmds[b] < p.cmds[target] {
					target = b
				}
			}
		}
	}
	if p.cmds[target] > 0 && (p.cmds[target]+len(it.Commands) > p.cfg.MaxBatch || p.bytes[target]+it.size > p.cfg.MaxRequestBytes) {
		return -1, false
	}
	return target, true
}

// add puts it in batch target.
func (p *plan) add(target int, it *Item) {
	p.batches[target] = append(p.batches[target], it)
	wasFull := p.isFull(target)
	p.cmds[target] += len(it.Commands)
	p.bytes[target] += it.size
	if !wasFull && p.isFull(target) {
		p.full++
	}
	for ch := range it.channels {
		if _, ok := p.owner[ch]; !ok {
			p.owner[ch] = target
			p.chans[target] = append(p.chans[target], ch)
		}
	}
}

func (p *plan) isFull(b int) bool {
	return p.cmds[b] >= p.cfg.MaxBatch || p.bytes[b] >= p.cfg.MaxRequestBytes
}
