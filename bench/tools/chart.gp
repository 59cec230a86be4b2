# The chart of a bench/run.sh run: wall time and peak RSS per workload per
# allocator, and fast-path instructions per malloc+free pair. report.py calls
#   gnuplot -e "datadir='DIR'; out='chart.png'; n=VARIANTS; rows=WORKLOADS; bars=ALLOCATORS; plot_title='...'" chart.gp
# with DIR holding time.dat, rss.dat (a row per workload, a column per
# allocator and execmem-quota — n columns —, '?' where missing) and
# callgrind.dat (a row per allocator: bars rows).
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
  set terminal pngcairo size 1800,1250 font "sans,10"
} else {
  set terminal png size 1800,1250
}
set output out
set datafile missing "?"
# The first line of every .dat file is its header, so $0 counts data rows from 0.
set key autotitle columnhead

# One colour per allocator, the same in every panel (column order of the .dat files).
set linetype 1 lc rgb "#7f7f7f"
set linetype 2 lc rgb "#1f77b4"
set linetype 3 lc rgb "#2ca02c"
set linetype 4 lc rgb "#9467bd"
set linetype 5 lc rgb "#d62728"
set linetype 6 lc rgb "#ff7f0e"

set style fill solid 0.85 border -1
set grid ytics
set key outside right top vertical
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
# x of column i's bar in a clustered histogram with gap 1 (for the value labels).
barx(i) = $0 + (i - 2 - (n - 1) / 2.0) / (n + 1.0)

set multiplot layout 3,1 title plot_title font ",13"

set style data histograms
set style histogram clustered gap 1
set xrange [-0.6:rows - 0.4]
set title "Wall time per workload (seconds, lower is better)"
set ylabel "seconds"
plot for [i=2:n+1] datadir.'/time.dat' using i:xtic(1) title columnheader(i), \
     for [i=2:n+1] datadir.'/time.dat' using (barx(i)):i:(sprintf("%.2f", column(i))) \
         with labels offset 0,0.7 font ",7" notitle

set title "Peak RSS per workload (MiB, lower is better)"
set ylabel "MiB"
plot for [i=2:n+1] datadir.'/rss.dat' using i:xtic(1) title columnheader(i), \
     for [i=2:n+1] datadir.'/rss.dat' using (barx(i)):i:(sprintf("%.0f", column(i))) \
         with labels offset 0,0.7 font ",7" notitle

set title "Fast path: instructions per mixed 16-512 B malloc+free pair (callgrind, lower is better)"
set ylabel "instructions"
set style data boxes
set boxwidth 0.6
unset key
set xrange [-0.6:bars-0.4]
plot datadir.'/callgrind.dat' using 0:2:($0 + 1):xtic(1) with boxes lc variable, \
     datadir.'/callgrind.dat' using 0:2:(sprintf("%.1f", $2)) with labels offset 0,0.7 font ",8"

unset multiplot
