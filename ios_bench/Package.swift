// swift-tools-version:5.7
// The iOS benchmark harness for mnv2deploy's Core ML exports: a small library that loads and runs a model, and an
// XCTest performance test that measures load and prediction with XCTClockMetric and XCTMemoryMetric.
import PackageDescription

let package = Package(
    name: "MNV2Bench",
    platforms: [.iOS(.v16), .macOS(.v13)],
    products: [
        .library(name: "MNV2Bench", targets: ["MNV2Bench"]),
    ],
    targets: [
        .target(name: "MNV2Bench"),
        .testTarget(
            name: "MNV2BenchTests",
            dependencies: ["MNV2Bench"],
            // `mnv2deploy bench --device` copies Model.mlpackage and bench_config.json here before building;
            // .copy keeps the package as is (it is compiled on the device, outside the measured blocks).
            resources: [.copy("Resources")]
        ),
    ]
)
