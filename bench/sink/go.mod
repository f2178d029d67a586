module wharf.local/bench/sink

go 1.22
