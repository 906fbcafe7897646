//! Jenkins: the REST client (`client`), its formats (`api`, pure), and the
//! supervisor of Jenkins' own `agent.jar` (`remoting`). Jenkins runs JVM
//! code on its agents, so halo does the HTTP parts itself (register the
//! node, learn its secret, fetch agent.jar, trigger and follow jobs) and
//! keeps a `java -jar agent.jar` child connected, as the Swarm client does.

pub mod api;
pub mod client;
pub mod remoting;
