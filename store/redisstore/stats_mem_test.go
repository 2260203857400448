package redisstore

import (
	"runtime"
	"strconv"
	"testing"

	"github.com/stepup-auth/stepup/risk"
)

// BenchmarkStatsMemoryFullTenant reports the heap one process spends on
// the statistics of a tenant whose every count row is full (each level's
// 16,384 counters in use): the most a tenant can cost a process.
//
//	go test -run XXX -bench StatsMemory ./store/redisstore/
func BenchmarkStatsMemoryFullTenant(b *testing.B) {
	for range b.N {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		t := newTenantStats()
		var d delta
		for _, l := range risk.LevelNames() {
			for bucket := range 1 << 14 {
				d.count(l, strconv.FormatUint(uint64(bucket), 36), 1)
			}
		}
		addCounts(t, &d)
		d = delta{}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MiB/tenant")
		runtime.KeepAlive(t)
	}
}
