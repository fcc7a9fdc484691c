"""The dialplan's safety net, kept current by the engine; the journeys of calls it carried."""
