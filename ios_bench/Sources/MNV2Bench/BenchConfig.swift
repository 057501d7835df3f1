import Foundation

/// What to measure: which model (and optionally its split twin, for the memory tests), which compute units, how many
/// timed and warm-up runs.
///
/// Read from (first match wins): the JSON file named by `MNV2_BENCH_CONFIG`; a model path in `MNV2_BENCH_MODEL`
/// (with `MNV2_BENCH_SPLIT_MODEL`, `MNV2_BENCH_COMPUTE_UNITS`, `MNV2_BENCH_RUNS`, `MNV2_BENCH_WARMUP`); or `bench_config.json` in the
/// test bundle's resources. On a device only the bundle is reachable, so `mnv2deploy bench --device` uses that.
/// xcodebuild passes `TEST_RUNNER_<NAME>` variables to the test process as `<NAME>`.
public struct BenchConfig: Codable, Equatable {
    public var model: String
    public var splitModel: String?  // the same model exported with --split K: testMemory_split_* measures it
    public var computeUnits: [String]
    public var runs: Int
    public var warmup: Int
    public var resultName: String

    public init(model: String, splitModel: String? = nil, computeUnits: [String] = ["all"], runs: Int = 50,
                warmup: Int = 5, resultName: String = "mnv2bench_result.json") {
        self.model = model
        self.splitModel = splitModel
        self.computeUnits = computeUnits
        self.runs = runs
        self.warmup = warmup
        self.resultName = resultName
    }

    public static let supportedComputeUnits = ["cpuOnly", "cpuAndGPU", "all"]

    public static func load(environment: [String: String] = ProcessInfo.processInfo.environment,
                            bundle: Bundle? = nil) throws -> BenchConfig {
        if let path = environment["MNV2_BENCH_CONFIG"] {
            return try decode(URL(fileURLWithPath: path))
        }
        if let model = environment["MNV2_BENCH_MODEL"] {
            let units = environment["MNV2_BENCH_COMPUTE_UNITS"]?.split(separator: ",").map(String.init) ?? ["all"]
            let config = BenchConfig(model: model, splitModel: environment["MNV2_BENCH_SPLIT_MODEL"], computeUnits: units,
                                     runs: Int(environment["MNV2_BENCH_RUNS"] ?? "") ?? 50,
                                     warmup: Int(environment["MNV2_BENCH_WARMUP"] ?? "") ?? 5)
            try config.validate()
            return config
        }
        if let bundle = bundle, let url = resourceURL(in: bundle, name: "bench_config.json") {
            var config = try decode(url)
            if !config.model.hasPrefix("/"), let modelURL = resourceURL(in: bundle, name: config.model) {
                config.model = modelURL.path
            }
            if let split = config.splitModel, !split.hasPrefix("/"), let splitURL = resourceURL(in: bundle, name: split) {
                config.splitModel = splitURL.path
            }
            return config
        }
        throw BenchError.noConfig
    }

    static func decode(_ url: URL) throws -> BenchConfig {
        let config = try JSONDecoder().decode(BenchConfig.self, from: Data(contentsOf: url))
        try config.validate()
        return config
    }

    /// Resources copied with `.copy("Resources")` keep their folder name inside the bundle.
    static func resourceURL(in bundle: Bundle, name: String) -> URL? {
        let candidates = [bundle.resourceURL?.appendingPathComponent("Resources").appendingPathComponent(name),
                          bundle.resourceURL?.appendingPathComponent(name)]
        return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    public func validate() throws {
        let unknown = computeUnits.filter { !BenchConfig.supportedComputeUnits.contains($0) }
        if !unknown.isEmpty {
            throw BenchError.badConfig("unknown compute units \(unknown); use \(BenchConfig.supportedComputeUnits)")
        }
        if runs < 1 || warmup < 0 {
            throw BenchError.badConfig("runs must be >= 1 and warmup >= 0 (got \(runs), \(warmup))")
        }
    }
}

public enum BenchError: Error, CustomStringConvertible {
    case noConfig
    case badConfig(String)
    case badModel(String)

    public var description: String {
        switch self {
        case .noConfig:
            return "no benchmark config: set MNV2_BENCH_CONFIG or MNV2_BENCH_MODEL, or add Resources/bench_config.json"
        case .badConfig(let why):
            return "bad benchmark config: \(why)"
        case .badModel(let why):
            return "cannot use the model: \(why)"
        }
    }
}
