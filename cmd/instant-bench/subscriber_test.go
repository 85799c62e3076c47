package main

import (
	"context"
	"testing"
	"time"

	"github.com/centrifugal/centrifuge-go"
)

func publication(run, seq int) centrifuge.PublicationEvent {
	return centrifuge.PublicationEvent{Publication: centrifuge.Publication{Data: appendData(nil, run, seq, time.Now())}}
}

// TestSubscriberCountsLateCopies: a copy that arrives after the last first
// copy, within the linger, is a duplicate of its scenario; one that arrives
// after the scenario was counted is a late duplicate, not a stray.
func TestSubscriberCountsLateCopies(t *testing.T) {
	s := &subscriber{runs: map[int]*tally{}, linger: 300 * time.Millisecond}
	tl := s.expect(7, 3, 1, 1)
	s.onPublication(publication(7, 0))
	s.onPublication(publication(7, 1))
	s.onPublication(publication(7, 0)) // duplicate before the last first copy
	late := make(chan struct{})
	go func() {
		<-tl.done
		s.onPublication(publication(7, 1)) // after the count completed, within the linger
		close(late)
	}()
	s.onPublication(publication(7, 2))
	got, err := s.wait(context.Background(), tl, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	<-late
	if got.distinct != 3 || got.dups != 2 {
		t.Errorf("got %d distinct, %d duplicates; want 3 and 2", got.distinct, got.dups)
	}
	s.onPublication(publication(7, 2)) // after the scenario was counted
	s.onPublication(publication(8, 0)) // of no run
	strays, lateDups, _ := s.problems()
	if strays != 1 || lateDups != 1 {
		t.Errorf("got %d strays, %d late duplicates; want 1 and 1", strays, lateDups)
	}
	if tl.dups != 2 {
		t.Errorf("the counted scenario's duplicates changed to %d after it was counted", tl.dups)
	}
}
