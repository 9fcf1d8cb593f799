"""The seven modules of FLARE: Model, Algorithm, ComputationTask, ComputationDataProcessor,
Agent, AgentHelper and Manager, plus the Env interface."""
