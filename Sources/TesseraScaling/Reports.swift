import Foundation

package enum OutputFormat: String, CaseIterable, Sendable {
    case table, json, csv
}

package enum Reports {
    package static func json(_ r: Report) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try! enc.encode(r), as: UTF8.self)
    }

    package static func csv(_ r: Report) -> String {
        var s = "op,shape,threads,fused,median_seconds,min_seconds,max_seconds,ns_per_element,gb_per_s,speedup,efficiency,roofline_percent,copy_gb_per_s,compute_floor_ns_per_element,compute_capacity,oversubscribed\n"
        for x in r.results {
            s += "\(x.op),\(ShapeSpec.format(x.shape)),\(x.threads),\(x.fused),\(x.median_seconds),\(x.min_seconds),\(x.max_seconds),"
            s += "\(x.ns_per_element),\(x.gb_per_s),\(x.speedup.map { "\($0)" } ?? ""),\(x.efficiency.map { "\($0)" } ?? ""),"
            s += "\(x.roofline_percent),\(x.copy_gb_per_s),\(x.compute_floor_ns_per_element),\(x.compute_capacity.map { "\($0)" } ?? ""),\(x.oversubscribed)\n"
        }
        return s
    }

    package static func table(_ r: Report) -> String {
        let m = r.machine
        var s = "Tessera \(m.tessera_version) scale-test (\(r.scenario)): \(m.cpu), \(m.cores) cores, \(m.numa_nodes) NUMA node(s), kernels: \(m.isa), executor: \(r.executor)\n"
        if let cm = m.cache_model { s += cm + "\n" }
        s += String(format: "memory copy of 2^24 floats (the faster of streaming and regular stores): %.1f GB/s with 1 worker, %.1f GB/s with %d", m.copy_gb_per_s_1_thread, m.copy_gb_per_s, m.cores)
        if let st = m.copy_streaming_gb_per_s, let rg = m.copy_regular_gb_per_s {
            s += String(format: " (streaming %.1f, regular %.1f)", st, rg)
        }
        s += "\n"
        if let c = m.compute_capacity {
            s += String(format: "compute capacity: %d core-bound threads at once give %.2fx one thread (the speedup ceiling for compute-bound ops in this run)\n", m.cores, c)
        }
        s += "\n"
        let experiment = Set(r.results.compactMap(\.stores)).count > 1
        var header = ["op", "shape", "workers", "median ms", "min-max ms", "ns/elem", "GB/s", "speedup", "ceiling", "effic.", "roofline"]
        if experiment { header.insert("stores", at: 2) }
        var rows: [[String]] = []
        for x in r.results {
            var row = [
                x.op + (x.op.hasPrefix("chain") ? (x.fused ? " fused" : " unfused") : ""),
                ShapeSpec.format(x.shape),
                "\(x.threads)\(x.oversubscribed ? "*" : "")",
                String(format: "%.3f", x.median_seconds * 1e3),
                String(format: "%.2f-%.2f", x.min_seconds * 1e3, x.max_seconds * 1e3),
                String(format: "%.3f", x.ns_per_element),
                String(format: "%.1f", x.gb_per_s),
                x.speedup.map { String(format: "%.2fx", $0) } ?? "-",
                x.compute_capacity.map { String(format: "%.2fx", $0) } ?? "-",
                x.efficiency.map { String(format: "%.0f%%", $0 * 100) } ?? "-",
                String(format: "%.0f%%", x.roofline_percent),
            ]
            if experiment { row.insert((x.stores ?? "auto") + (x.stores == "auto" ? (x.streaming == true ? " (nt)" : " (reg)") : ""), at: 2) }
            rows.append(row)
        }
        let widths = header.indices.map { i in max(header[i].count, rows.map { $0[i].count }.max() ?? 0) }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i < (experiment ? 3 : 2) ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ")
        }
        s += line(header) + "\n" + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        var last = ""
        for (x, row) in zip(r.results, rows) {
            let key = "\(x.op)\(x.shape)\(x.fused)"
            if !last.isEmpty && key != last { s += "\n" }
            last = key
            s += line(row) + "\n"
        }
        if r.results.contains(where: \.oversubscribed) {
            s += "\n* more workers than the \(m.cores) cores: the extra workers find no tiles left, so time should match \(m.cores) workers.\n"
        }
        if experiment { s += "\n" + storesSummary(r) }
        s += "ceiling: what that many core-bound threads give together over one alone, measured before each op (2.00x = two free cores).\n"
        s += "roofline: max(bytes moved / bandwidth of a copy that size at that worker count, cache-resident compute time / ceiling), as % of the measured time.\n"
        return s
    }

    /// The stores experiment's verdict, per workload and worker count: `choice`, the time of the
    /// policy auto picked (as measured under that policy) over the better of streaming and
    /// regular -- how good the decision is (target: at most 1.05); and `noise`, auto's own time
    /// over the time of the policy it picked: the same code measured twice in one run.
    package static func storesSummary(_ r: Report) -> String {
        var s = "stores: choice = the chosen policy's median over the better one's (target <= 1.05); noise = auto over the chosen policy (the same code)\n"
        var keys: [String] = []
        var byKey: [String: [String: Record]] = [:]
        for x in r.results {
            let k = "\(x.op)\(x.op.hasPrefix("chain") ? (x.fused ? " fused" : " unfused") : "") \(ShapeSpec.format(x.shape)), \(x.threads) worker(s)"
            if byKey[k] == nil { keys.append(k) }
            byKey[k, default: [:]][x.stores ?? "auto"] = x
        }
        var worstChoice = 0.0, worstNoise = 0.0, misses = 0
        for k in keys {
            guard let a = byKey[k]?["auto"], let st = byKey[k]?["streaming"], let rg = byKey[k]?["regular"] else { continue }
            let chosen = a.streaming == true ? st : rg
            let choice = chosen.median_seconds / min(st.median_seconds, rg.median_seconds)
            let noise = a.median_seconds / chosen.median_seconds
            worstChoice = max(worstChoice, choice)
            worstNoise = max(worstNoise, abs(noise - 1) + 1)
            if choice > 1.05 { misses += 1 }
            s += String(format: "  %@: auto chose %@; streaming %.3f, regular %.3f, auto %.3f ns/elem; choice %.2f, noise %.2f%@\n", k,
                        a.streaming == true ? "streaming" : "regular", st.ns_per_element, rg.ns_per_element, a.ns_per_element,
                        choice, noise, choice > 1.05 ? "  <-- choice over 1.05" : "")
        }
        s += String(format: "worst choice %.2f (%d point(s) over 1.05), worst noise %.2f\n\n", worstChoice, misses, worstNoise)
        return s
    }

    /// Speedup vs workers, one line per op (and shape), with the ideal line.
    package static func svg(_ r: Report) -> String {
        let series = Dictionary(grouping: r.results.filter { $0.speedup != nil }) { "\($0.op)\($0.op.hasPrefix("chain") ? ($0.fused ? " fused" : " unfused") : "") \(ShapeSpec.format($0.shape))" }
        let keys = series.keys.sorted()
        let maxT = max(2, r.results.map(\.threads).max() ?? 2)
        let maxS = max(2.0, Double(min(maxT, r.machine.cores)) * 1.1, r.results.compactMap(\.speedup).max() ?? 1)
        let W = 760.0, H = 420.0, L = 60.0, R = 250.0, T = 40.0, B = 50.0
        let pw = W - L - R, ph = H - T - B
        let lx = { (t: Double) in L + pw * log2(t) / log2(Double(maxT)) }
        let ly = { (s: Double) in T + ph * (1 - s / maxS) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(W))\" height=\"\(Int(H))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(L)\" y=\"22\" font-size=\"15\">Tessera speedup vs workers — \(esc(r.machine.cpu)), \(r.machine.cores) cores</text>\n"
        var t = 1
        while t <= maxT {
            let x = lx(Double(t))
            s += "<line x1=\"\(x)\" y1=\"\(T)\" x2=\"\(x)\" y2=\"\(T + ph)\" stroke=\"#eee\"/><text x=\"\(x)\" y=\"\(T + ph + 16)\" text-anchor=\"middle\">\(t)</text>\n"
            t *= 2
        }
        var v = 0.0
        let step = maxS > 8 ? 2.0 : (maxS > 4 ? 1.0 : 0.5)
        while v <= maxS {
            let y = ly(v)
            s += "<line x1=\"\(L)\" y1=\"\(y)\" x2=\"\(L + pw)\" y2=\"\(y)\" stroke=\"#eee\"/><text x=\"\(L - 6)\" y=\"\(y + 4)\" text-anchor=\"end\">\(String(format: "%g", v))</text>\n"
            v += step
        }
        s += "<text x=\"\(L + pw / 2)\" y=\"\(H - 12)\" text-anchor=\"middle\">workers (log scale)</text>\n"
        s += "<text transform=\"translate(16,\(T + ph / 2)) rotate(-90)\" text-anchor=\"middle\">speedup vs 1 worker</text>\n"
        // ideal: linear up to the cores, flat after
        let cores = Double(r.machine.cores)
        s += "<polyline fill=\"none\" stroke=\"#888\" stroke-dasharray=\"6,4\" points=\"\(lx(1)),\(ly(1)) \(lx(min(cores, Double(maxT)))),\(ly(min(cores, Double(maxT)))) \(lx(Double(maxT))),\(ly(min(cores, Double(maxT))))\"/>\n"
        let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                      "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"]
        for (i, k) in keys.enumerated() {
            let pts = series[k]!.sorted { $0.threads < $1.threads }
            let c = colors[i % colors.count]
            s += "<polyline fill=\"none\" stroke=\"\(c)\" stroke-width=\"2\" points=\"\(pts.map { "\(lx(Double($0.threads))),\(ly($0.speedup!))" }.joined(separator: " "))\"/>\n"
            for p in pts { s += "<circle cx=\"\(lx(Double(p.threads)))\" cy=\"\(ly(p.speedup!))\" r=\"3\" fill=\"\(c)\"/>\n" }
            let y = T + 10 + Double(i) * 17
            s += "<line x1=\"\(L + pw + 15)\" y1=\"\(y)\" x2=\"\(L + pw + 35)\" y2=\"\(y)\" stroke=\"\(c)\" stroke-width=\"2\"/><text x=\"\(L + pw + 40)\" y=\"\(y + 4)\">\(esc(k))</text>\n"
        }
        let y = T + 10 + Double(keys.count) * 17
        s += "<line x1=\"\(L + pw + 15)\" y1=\"\(y)\" x2=\"\(L + pw + 35)\" y2=\"\(y)\" stroke=\"#888\" stroke-dasharray=\"6,4\"/><text x=\"\(L + pw + 40)\" y=\"\(y + 4)\">ideal</text>\n"
        s += "</svg>\n"
        return s
    }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
