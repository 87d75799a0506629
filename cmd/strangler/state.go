package main

import (
	"context"
	"encoding/json"
	"fmt"

	"strangler/shadow"
	"strangler/store"
)

// samplesPerRoute bounds the shadow mismatch samples kept per route.
const samplesPerRoute = 100

// storeSamples keeps shadow mismatch samples in the state store, as JSON.
type storeSamples struct{ s *store.Store }

func (a storeSamples) Add(ctx context.Context, smp shadow.Sample) error {
	b, err := json.Marshal(smp)
	if err != nil {
		return err
	}
	return a.s.AddSample(ctx, smp.Route, smp.At, b, samplesPerRoute)
}

func (a storeSamples) List(ctx context.Context, route string, limit int) ([]shadow.Sample, error) {
	rows, err := a.s.Samples(ctx, route, limit)
	if err != nil {
		return nil, err
	}
	out := make([]shadow.Sample, 0, len(rows))
	for _, r := range rows {
		var smp shadow.Sample
		if err := json.Unmarshal(r.Data, &smp); err != nil {
			return nil, fmt.Errorf("stored sample %d: %w", r.ID, err)
		}
		out = append(out, smp)
	}
	return out, nil
}
