import CoreML
import MNV2Bench
import XCTest

/// Load and prediction time (XCTClockMetric) and memory (XCTMemoryMetric) for each compute-unit setting, and the
/// memory of the plain model beside its split twin (the paper's claim) in the same run.
///
/// One test method per (phase, compute units) so xcresulttool reports each separately; tests whose compute units
/// the config does not ask for are skipped. Method names are parsed by mnv2deploy/ios/xcresult.py:
/// test<Load|Predict>_<cpuOnly|cpuAndGPU|all> and testMemory_<plain|split>_<cpuOnly|cpuAndGPU|all>.
final class MNV2BenchTests: XCTestCase {
    static var compiled: [String: URL] = [:]
    static var records: [BenchRecord] = []

    func testLoad_cpuOnly() throws { try measureLoad(units: "cpuOnly") }
    func testPredict_cpuOnly() throws { try measurePredict(units: "cpuOnly") }
    func testLoad_cpuAndGPU() throws { try measureLoad(units: "cpuAndGPU") }
    func testPredict_cpuAndGPU() throws { try measurePredict(units: "cpuAndGPU") }
    func testLoad_all() throws { try measureLoad(units: "all") }
    func testPredict_all() throws { try measurePredict(units: "all") }
    func testMemory_plain_cpuOnly() throws { try measureMemory(of: "plain", units: "cpuOnly") }
    func testMemory_split_cpuOnly() throws { try measureMemory(of: "split", units: "cpuOnly") }
    func testMemory_plain_cpuAndGPU() throws { try measureMemory(of: "plain", units: "cpuAndGPU") }
    func testMemory_split_cpuAndGPU() throws { try measureMemory(of: "split", units: "cpuAndGPU") }
    func testMemory_plain_all() throws { try measureMemory(of: "plain", units: "all") }
    func testMemory_split_all() throws { try measureMemory(of: "split", units: "all") }

    private func benchConfig(for units: String) throws -> BenchConfig {
        let config = try BenchConfig.load(bundle: Bundle.module)
        try XCTSkipUnless(config.computeUnits.contains(units), "compute units \(units) not requested")
        return config
    }

    private func compiledModel(_ config: BenchConfig) throws -> URL {
        return try compiledModel(at: config.model)
    }

    private func compiledModel(at path: String) throws -> URL {
        if let url = MNV2BenchTests.compiled[path] {
            return url
        }
        let url = try ModelRunner.compile(modelAt: path)
        MNV2BenchTests.compiled[path] = url
        return url
    }

    private func options(_ config: BenchConfig) -> XCTMeasureOptions {
        let options = XCTMeasureOptions()
        options.iterationCount = config.runs
        return options
    }

    private func measureLoad(units: String) throws {
        let config = try benchConfig(for: units)
        let runner = try ModelRunner(compiledURL: try compiledModel(config), computeUnitsName: units)
        for _ in 0..<config.warmup {
            try runner.load()  // the first load may compile for the device; keep it out of the numbers
        }
        try measureSamples(config: config, units: units, phase: "load") { _ = try runner.load() }
    }

    private func measurePredict(units: String) throws {
        let config = try benchConfig(for: units)
        let runner = try ModelRunner(compiledURL: try compiledModel(config), computeUnitsName: units)
        try runner.load()
        for _ in 0..<config.warmup {
            try runner.predict()
        }
        try measureSamples(config: config, units: units, phase: "predict") { _ = try runner.predict() }
    }

    /// Physical memory of a fresh load plus one prediction, per iteration, for the plain model ("plain") or its split
    /// twin ("split", `splitModel` in the config). Both run in the same test run, on the same device and compute
    /// units, after one untimed load + prediction each (device-specific compilation stays out of the numbers). The
    /// weights are the same in both, so the difference is what the runtime allocates for activations.
    private func measureMemory(of which: String, units: String) throws {
        let config = try benchConfig(for: units)
        let path: String
        if which == "split" {
            guard let split = config.splitModel else {
                throw XCTSkip("no splitModel in the config: export one with --split K and add it")
            }
            path = split
        } else {
            path = config.model
        }
        let url = try compiledModel(at: path)
        let warm = try ModelRunner(compiledURL: url, computeUnitsName: units)
        try warm.load()
        try warm.predict()
        var failure: Error?
        measure(metrics: [XCTMemoryMetric()], options: options(config)) {
            autoreleasepool {
                do {
                    let runner = try ModelRunner(compiledURL: url, computeUnitsName: units)
                    try runner.load()
                    try runner.predict()
                } catch {
                    failure = error
                }
            }
        }
        if let failure = failure {
            throw failure
        }
    }

    /// XCTest measures `body` once per iteration; the same iterations are also timed here for the JSON record.
    private func measureSamples(config: BenchConfig, units: String, phase: String,
                                body: @escaping () throws -> Void) throws {
        var samples: [Double] = []
        var failure: Error?
        measure(metrics: [XCTClockMetric(), XCTMemoryMetric()], options: options(config)) {
            do {
                samples.append(try elapsedMilliseconds(body))
            } catch {
                failure = error
            }
        }
        if let failure = failure {
            throw failure
        }
        try saveRecord(BenchRecord(model: config.model, computeUnits: units, phase: phase, warmup: config.warmup,
                                   samplesMs: samples), config: config)
    }

    /// The JSON result: written to the temporary directory and attached to the result bundle
    /// (`xcrun xcresulttool export attachments --path R.xcresult --output-path DIR` gets it back).
    private func saveRecord(_ entry: BenchRecord, config: BenchConfig) throws {
        MNV2BenchTests.records.append(entry)
        let url = try writeRecords(MNV2BenchTests.records, named: config.resultName)
        let attachment = XCTAttachment(contentsOfFile: url)
        attachment.name = config.resultName
        attachment.lifetime = .keepAlways
        add(attachment)
    }
}
