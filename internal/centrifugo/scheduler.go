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
// to k batches of at most MaxBatch commands. A channel belongs to one batch
// only, so batches can be in flight at once without reordering a channel;
// items touching a busy channel wait, and so does every later item of a
// channel that has an item waiting. waiting[:start] are known to be blocked
// and their channels are in held, which gains the channels of the items left
// behind. It returns the batches, the channels of each, and the items left
// waiting, in order.
func (f *Forwarder) take(waiting []*Item, busy, held map[string]struct{}, start, k int) (batches [][]*Item, chans [][]string, rest []*Item) {
	owner := map[string]int{} // channel -> batch in this pass
	var sizes []int
	full := 0
	rest = make([]*Item, start, len(waiting))
	copy(rest, waiting[:start])
	for i := start; i < len(waiting); i++ {
		it := waiting[i]
		if full == k {
			rest = append(rest, waiting[i:]...)
			break
		}
		blocked, target := false, -1
		for ch := range it.channels {
			if _, ok := busy[ch]; ok {
				blocked = true
				break
			}
			if _, ok := held[ch]; ok {
				blocked = true
				break
			}
			if b, ok := owner[ch]; ok {
				if target >= 0 && target != b {
					blocked = true // its channels are split over two batches
					break
				}
				target = b
			}
		}
		if !blocked && target < 0 {
			if len(batches) < k {
				batches, chans, sizes = append(batches, nil), append(chans, nil), append(sizes, 0)
				target = len(batches) - 1
			} else {
				target = 0
				for b := range sizes {
					if sizes[b] < sizes[target] {
						target = b
					}
				}
			}
		}
		if !blocked && sizes[target] > 0 && sizes[target]+len(it.Commands) > f.cfg.MaxBatch {
			blocked = true
		}
		if blocked {
			for ch := range it.channels {
				held[ch] = struct{}{}
			}
			rest = append(rest, it)
			continue
		}
		batches[target] = append(batches[target], it)
		wasFull := sizes[target] >= f.cfg.MaxBatch
		sizes[target] += len(it.Commands)
		if !wasFull && sizes[target] >= f.cfg.MaxBatch {
			full++
		}
		for ch := range it.channels {
			if _, ok := owner[ch]; !ok {
				owner[ch] = target
				chans[target] = append(chans[target], ch)
			}
		}
	}
	// A batch opened for an item that then did not fit stays empty: drop it.
	out, outChans := batches[:0], chans[:0]
	for b := range batches {
		if len(batches[b]) > 0 {
			out, outChans = append(out, batches[b]), append(outChans, chans[b])
		}
	}
	return out, outChans, rest
}
